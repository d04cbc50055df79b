"""The one produce path every ingestor, the collector and replay use.

``acks=all`` with idempotence, zstd compression and a short linger for batching; the Kafka
record timestamp is the event's ``ts``; the key keeps together what must meet:

- web events: ``<site>|<session>`` (a session's pageviews and conversions, for attribution);
- posts: their own id (a post is where its engagements meet it);
- reshares and reactions: their ``target`` (they land beside the post they engage with).

Replies are posts keyed by their own id; the processors' gate routes a copy beside the
parent (see processors/gate.py). ``send_events`` only returns once Kafka acknowledged every
event, so callers acknowledge upstream (cursor, HTTP 2xx) after it and never before.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

from ingest.events import Event, encode_event, event_ts
from ingest.kafka_client import Brokers, client_options
from ingest.metricdefs import INGEST_DEAD_LETTERS, INGEST_EVENTS, INGEST_PRODUCE_ERRORS
from ingest.telemetry import counter
from ingest.topics import Topics

log = logging.getLogger(__name__)

DLQ_REASON = "ripple-reason"
DLQ_SOURCE = "ripple-source"
DLQ_DETAIL = "ripple-detail"

# After these a producer's idempotence state (producer id, sequence numbers) is broken for
# good: aiokafka numbers a batch that then expires unsent while the broker is away, and every
# later batch of that partition fails with OutOfOrderSequenceNumber. The broker rejected
# those records (nothing written), so a fresh producer (new id) sends them again safely.
_BROKEN_STATE = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch, ProducerFenced)


def partition_key(ev: Event) -> bytes:
    kind = ev.kind  # type: ignore[attr-defined]
    if kind in ("pageview", "share_click", "conversion"):
        return f"{ev.site}|{ev.session}".encode()  # type: ignore[union-attr]
    if kind == "post":
        return ev.id.encode()
    return ev.target.encode()  # type: ignore[union-attr]


def dead_letter_headers(source: str, reason: str, detail: str) -> list[tuple[str, bytes]]:
    return [
        (DLQ_REASON, reason.encode()),
        (DLQ_SOURCE, source.encode()),
        (DLQ_DETAIL, detail[:1000].encode("utf-8", "replace")),
    ]


class EventProducer:
    """Async producer of canonical events and dead letters for one namespace."""

    def __init__(
        self,
        bootstrap: Brokers,
        namespace: str = "ripple",
        source: str = "unknown",
        *,
        linger_ms: int = 10,
        max_retry_seconds: float | None = None,
    ) -> None:
        self.topics = Topics(namespace)
        self.source = source
        self.bootstrap = bootstrap
        self._linger_ms = linger_ms
        self._max_retry_seconds = max_retry_seconds
        self._producer: AIOKafkaProducer | None = None
        self._renew_lock = asyncio.Lock()
        self._retired: set[asyncio.Task[None]] = set()
        self._events = counter(INGEST_EVENTS)
        self._dead = counter(INGEST_DEAD_LETTERS)
        self._retries = counter(INGEST_PRODUCE_ERRORS)

    async def start(self) -> None:
        """Connect, retrying with backoff while the broker is unreachable."""
        delay = 0.5
        while True:
            producer = AIOKafkaProducer(
                **client_options(self.bootstrap, "aiokafka"),
                acks="all",
                enable_idempotence=True,
                compression_type="zstd",
                linger_ms=self._linger_ms,
                max_batch_size=256 * 1024,
                request_timeout_ms=30000,
            )
            try:
                await producer.start()
            except KafkaError as exc:
                await producer.stop()
                log.warning(
                    "kafka unreachable at %s (%s); retrying in %.1fs", self.bootstrap, exc, delay
                )
                self._retries.labels(self.source).inc()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)
                continue
            self._producer = producer
            return

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        if self._retired:
            await asyncio.gather(*self._retired, return_exceptions=True)

    async def _renew(self, broken: AIOKafkaProducer) -> None:
        """Replace ``broken`` by a fresh producer (once, however many callers saw it break)."""
        async with self._renew_lock:
            if id(self._producer) != id(broken):
                return  # another caller renewed it already
            log.warning(
                "producer state broken (sequence gap after an outage): starting a new producer"
            )
            await self.start()
            # Its remaining batches fail or finish; their callers retry on the new producer.
            task = asyncio.create_task(broken.stop())
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)

    async def __aenter__(self) -> EventProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("producer not started")
        return self._producer

    async def send_events(self, events: Sequence[Event]) -> None:
        """Produce events and return once Kafka acknowledged all of them (retrying)."""
        pending = [(ev, encode_event(ev)) for ev in events]
        await self._send_with_retry(
            [
                (self.topics.events, partition_key(ev), value, int(event_ts(ev) * 1000), None)
                for ev, value in pending
            ]
        )
        for ev, _ in pending:
            self._events.labels(self.source, ev.kind).inc()  # type: ignore[attr-defined]

    async def send_raw(self, records: Iterable[tuple[bytes | None, bytes, int | None]]) -> None:
        """Produce already-encoded records (key, value, timestamp_ms) to ``<ns>.events``."""
        await self._send_with_retry([(self.topics.events, k, v, ts, None) for k, v, ts in records])

    async def dead_letter(
        self, raw: bytes, reason: str, detail: str, source: str | None = None
    ) -> None:
        """The original bytes to ``<ns>.dlq``, reason and source in headers; counts it."""
        src = source or self.source
        await self._send_with_retry(
            [(self.topics.dlq, None, raw, None, dead_letter_headers(src, reason, detail))]
        )
        self._dead.labels(src, reason).inc()

    async def _send_with_retry(
        self,
        records: list[tuple[str, bytes | None, bytes, int | None, list[tuple[str, bytes]] | None]],
    ) -> None:
        # Idempotence makes a resend of an acknowledged-but-unanswered batch harmless.
        todo = records
        delay = 0.2
        waited = 0.0
        while todo:
            producer = self.producer
            futures = []
            send_error: BaseException | None = None
            for topic, key, value, ts, headers in todo:
                try:
                    fut = await producer.send(
                        topic, value, key=key, timestamp_ms=ts, headers=headers
                    )
                except KafkaError as exc:
                    # send() itself raises when it cannot learn the topic's metadata or the
                    # buffer stays full (broker away): this record and the rest are retried.
                    send_error = exc
                    break
                futures.append(fut)
            results = await asyncio.gather(*futures, return_exceptions=True)
            failed = [
                rec for rec, res in zip(todo, results, strict=False) if isinstance(res, Exception)
            ]
            failed += todo[len(futures) :]
            if not failed:
                return
            err = next((r for r in results if isinstance(r, Exception)), send_error)
            assert err is not None
            if any(isinstance(r, _BROKEN_STATE) for r in results):
                await self._renew(producer)
                delay = 0.2
            if self._max_retry_seconds is not None and waited >= self._max_retry_seconds:
                raise err
            self._retries.labels(self.source).inc()
            log.warning(
                "%d records not acknowledged (%s); retrying in %.1fs", len(failed), err, delay
            )
            await asyncio.sleep(delay + random.uniform(0, delay / 2))
            waited += delay
            delay = min(delay * 2, 10.0)
            todo = failed
