"""The one produce path every ingestor, the collector and replay use.

``acks=all`` with idempotence, zstd compression and a short linger for batching; the Kafka
record timestamp is the event's ``ts``; the key keeps together what must meet:

- web events: ``<site>|<session>`` (a session's pageviews and conversions, for attribution);
- posts: their own id (a post is where its engagements meet it);
- reshares and reactions: their ``target`` (they land beside the post they engage with).

Replies are posts keyed by their own id; the processors' gate routes a copy beside the
parent (see processors/job/gate.py). ``send_events`` only returns once Kafka acknowledged every
event, so callers acknowledge upstream (cursor, HTTP 2xx) after it and never before.

What Kafka refuses for good (a record over the broker's or topic's size limit, any other
non-retriable broker error) is never retried forever: the record is sent alone once (a
broker refuses a whole batch), and if it is refused again a truncated copy (16 KiB) goes
to ``<ns>.dlq`` with reason ``too_large`` or ``kafka_rejected``; the call then returns, so
the source's cursor moves past it. Transient errors (broker away, leader moving) are
retried with backoff; after ``pause_after_seconds`` the producer logs that its source is
PAUSED and sets ``ripple_ingest_paused{source}`` to 1 (the source reads nothing more while
its batch waits), and back to 0 once Kafka acknowledges again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    BrokerResponseError,
    ClusterAuthorizationFailedError,
    InvalidProducerEpoch,
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnknownProducerId,
)

from ingest.events import Event, encode_event, event_ts
from ingest.kafka_client import Brokers, client_options
from ingest.metricdefs import (
    INGEST_DEAD_LETTERS,
    INGEST_EVENTS,
    INGEST_PAUSED,
    INGEST_PRODUCE_ERRORS,
)
from ingest.telemetry import counter, gauge
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
# Over the client's max_request_size or the broker's/topic's max.message.bytes.
_TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError)
_AUTHORIZATION = (
    TopicAuthorizationFailedError,
    ClusterAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
# A refused record goes to the DLQ as its first bytes: enough to see what it was.
DLQ_COPY_BYTES = 16 * 1024
# Transient errors retried this long before the source is reported paused.
PAUSE_AFTER_SECONDS = 60.0

_Record = tuple[str, bytes | None, bytes, int | None, list[tuple[str, bytes]] | None]
_Result = BaseException | None


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
        pause_after_seconds: float = PAUSE_AFTER_SECONDS,
    ) -> None:
        self.topics = Topics(namespace)
        self.source = source
        self.bootstrap = bootstrap
        self._linger_ms = linger_ms
        self._max_retry_seconds = max_retry_seconds
        self._pause_after_seconds = pause_after_seconds
        self._paused = False
        self._paused_gauge = gauge(INGEST_PAUSED)
        self._paused_gauge.labels(source).set(0)
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
        """Produce events and return once Kafka acknowledged all of them (retrying).

        An event Kafka refuses for good (over the broker's size limit, or any other
        non-retriable error) is a dead letter instead; this returns once it is in the DLQ."""
        pending = [(ev, encode_event(ev)) for ev in events]
        refused = await self._send_with_retry(
            [
                (self.topics.events, partition_key(ev), value, int(event_ts(ev) * 1000), None)
                for ev, value in pending
            ]
        )
        for i, (ev, _) in enumerate(pending):
            if i not in refused:
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

    async def _attempt(self, producer: AIOKafkaProducer, todo: list[_Record]) -> list[_Result]:
        """One try at every record: None where acknowledged, else its error."""
        futures: list[asyncio.Future[object]] = []
        early: dict[int, BaseException] = {}
        for i, (topic, key, value, ts, headers) in enumerate(todo):
            try:
                fut = await producer.send(topic, value, key=key, timestamp_ms=ts, headers=headers)
            except _TOO_LARGE as exc:  # the client's own size check: this record only
                early[i] = exc
                continue
            except KafkaError as exc:
                # send() itself raises when it cannot learn the topic's metadata or the
                # buffer stays full (broker away): this record and the rest are retried.
                for j in range(i, len(todo)):
                    early[j] = exc
                break
            futures.append(fut)
        results = iter(await asyncio.gather(*futures, return_exceptions=True))
        out: list[_Result] = []
        for i in range(len(todo)):
            if i in early:
                out.append(early[i])
            else:
                res = next(results)
                out.append(res if isinstance(res, BaseException) else None)
        return out

    async def _send_with_retry(self, records: list[_Record]) -> set[int]:
        """Send until each record is acknowledged or refused for good; returns the indexes
        of the refused ones (then dead letters). Transient errors are retried with backoff;
        past ``pause_after_seconds`` the source is reported paused (log, gauge) and the
        retries go on (the caller, and so the source, waits); past ``max_retry_seconds``
        (when set) the error is raised."""
        # Idempotence makes a resend of an acknowledged-but-unanswered batch harmless.
        todo = list(enumerate(records))
        refused: set[int] = set()
        delay = 0.2
        started = time.monotonic()
        while todo:
            producer = self.producer
            attempt = asyncio.ensure_future(self._attempt(producer, [rec for _, rec in todo]))
            if not self._paused:
                # A broker that hangs answers nothing for request_timeout_ms: the pause is
                # measured in wall time, whether the time goes on waiting or on retrying.
                left = self._pause_after_seconds - (time.monotonic() - started)
                try:
                    done, _ = await asyncio.wait({attempt}, timeout=max(0.0, left))
                except asyncio.CancelledError:
                    attempt.cancel()
                    raise
                if not done:
                    self._set_paused(True, "no answer", time.monotonic() - started)
            results = await attempt
            failed: list[tuple[int, _Record, BaseException]] = []
            for (i, rec), res in zip(todo, results, strict=True):
                if res is None:
                    continue
                if not _refused_for_good(res):
                    failed.append((i, rec, res))
                    continue
                # A broker refuses a whole batch: send the record alone to know it is
                # this record, not a neighbour in its batch, that Kafka will not take.
                (alone,) = await self._attempt(producer, [rec])
                if alone is None:
                    continue
                if _refused_for_good(alone):
                    await self._refuse(rec, alone)
                    refused.add(i)
                else:
                    failed.append((i, rec, alone))
            waited = time.monotonic() - started
            if not failed:
                if self._paused:
                    self._set_paused(False, "", waited)
                return refused
            err = failed[0][2]
            if any(isinstance(e, _BROKEN_STATE) for _, _, e in failed):
                await self._renew(producer)
                delay = 0.2
            if self._max_retry_seconds is not None and waited >= self._max_retry_seconds:
                raise err
            if not self._paused and waited >= self._pause_after_seconds:
                self._set_paused(True, f"{type(err).__name__}: {err}", waited)
            self._retries.labels(self.source).inc()
            log.warning(
                "%d records not acknowledged (%s); retrying in %.1fs", len(failed), err, delay
            )
            await asyncio.sleep(delay + random.uniform(0, delay / 2))
            delay = min(delay * 2, 10.0)
            todo = [(i, rec) for i, rec, _ in failed]
        return refused

    def _set_paused(self, paused: bool, why: str, waited: float) -> None:
        self._paused = paused
        self._paused_gauge.labels(self.source).set(1 if paused else 0)
        if paused:
            log.error(
                "%s: PAUSED: Kafka has not acknowledged for %.0fs (%s); nothing more is read "
                "from the source until it does (retrying)", self.source, waited, why,
            )  # fmt: skip
        else:
            log.warning("%s: resumed: Kafka acknowledges again", self.source)

    async def _refuse(self, rec: _Record, err: BaseException) -> None:
        """A record Kafka will never take: a truncated copy and the reason to the DLQ."""
        topic, key, value, _, headers = rec
        reason = "too_large" if isinstance(err, _TOO_LARGE) else "kafka_rejected"
        detail = (
            f"kafka refused the record for {topic}: {type(err).__name__}: {err}; "
            f"{len(value)} bytes, the first {min(len(value), DLQ_COPY_BYTES)} kept"
            + (f"; key {key[:200]!r}" if key else "")
        )
        if topic == self.topics.dlq:  # the dead letter itself: nowhere left to put it
            log.error("dead letter dropped: %s", detail)
            self._dead.labels(self.source, "dlq_rejected").inc()
            return
        log.error("%s: %s", self.source, detail)
        src = dict(headers or ()).get(DLQ_SOURCE, b"").decode() or self.source
        await self.dead_letter(value[:DLQ_COPY_BYTES], reason, detail, source=src)


def _refused_for_good(err: BaseException) -> bool:
    """Errors that no retry can cure (broker-side rejections of this record); authorization
    and broken producer state are operator or producer matters, retried (and paused)."""
    if isinstance(err, _TOO_LARGE):
        return True
    return (
        isinstance(err, BrokerResponseError)
        and not err.retriable
        and not isinstance(err, (*_BROKEN_STATE, *_AUTHORIZATION))
    )
