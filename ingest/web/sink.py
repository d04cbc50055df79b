"""Where accepted records go: Kafka, or the local spool while Kafka is away.

``submit`` returns only once the records are safe: acknowledged by Kafka (``ACKED``) or
appended to the spool and fsynced (``SPOOLED``); the HTTP answer follows from that.

Two modes:

- direct: each request's records go to the producer; if Kafka has not acknowledged them
  within ``ack_timeout`` the sink switches to spooling. The records of that request stay
  in the producer (which retries them, idempotently, until Kafka is back) and are also
  written to the spool as insurance against a crash; the drainer waits for that send
  instead of sending them a second time, so they reach Kafka once.
- spooling: new records are appended to the spool; one drainer sends the spool in order
  and switches back to direct once it is empty. Nothing bypasses the spool meanwhile, so
  records leave in the order they were accepted.

The sink also starts in spooling mode: until the producer has connected, records are spooled.
Only after a crash or a stop during an outage can a record be sent twice (spooled frames
past the last recorded offset); it keeps its id, so downstream deduplication absorbs it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Sequence

import msgspec

from ingest.events import Event, decode_event, encode_event
from ingest.metricdefs import COLLECTOR_SPOOLED
from ingest.producer import EventProducer
from ingest.telemetry import gauge
from ingest.web.spool import Spool

log = logging.getLogger(__name__)


class DeadLetter(msgspec.Struct, frozen=True):
    """A refused request body for ``<ns>.dlq``: the original bytes, reason and detail."""

    raw: bytes
    reason: str
    detail: str


Item = Event | DeadLetter


class Delivery(enum.Enum):
    ACKED = "acked"
    SPOOLED = "spooled"


# Spool frames: a msgpack list of events (canonical JSON) and dead letters.
class _SpooledEvent(msgspec.Struct, array_like=True, tag="e"):
    value: bytes


class _SpooledDeadLetter(msgspec.Struct, array_like=True, tag="d"):
    raw: bytes
    reason: str
    detail: str


_frame_encoder = msgspec.msgpack.Encoder()
_frame_decoder = msgspec.msgpack.Decoder(list[_SpooledEvent | _SpooledDeadLetter])


def encode_frame(items: Sequence[Item]) -> bytes:
    return _frame_encoder.encode(
        [
            _SpooledDeadLetter(it.raw, it.reason, it.detail)
            if isinstance(it, DeadLetter)
            else _SpooledEvent(encode_event(it))
            for it in items
        ]
    )


def decode_frame(payload: bytes) -> list[Item]:
    return [
        DeadLetter(row.raw, row.reason, row.detail)
        if isinstance(row, _SpooledDeadLetter)
        else decode_event(row.value)
        for row in _frame_decoder.decode(payload)
    ]


class Sink:
    def __init__(self, producer: EventProducer, spool: Spool, *, ack_timeout: float = 1.0) -> None:
        self.producer = producer
        self.spool = spool
        self.ack_timeout = ack_timeout
        self._spooling = True
        self._connect: asyncio.Task[None] | None = None
        self._drainer: asyncio.Task[None] | None = None
        self._inflight: dict[int, asyncio.Future[None]] = {}  # spool offset -> direct send
        self._open_items: list[Item] | None = None
        self._open_task: asyncio.Task[None] | None = None
        self._spooled_items = 0
        self._gauge = gauge(COLLECTOR_SPOOLED)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the spool and connect in the background; accepting starts at once."""
        self.spool.open()
        self._spooled_items = self._count_spooled()
        self._gauge.set(self._spooled_items)
        self._connect = asyncio.create_task(self.producer.start())
        self._start_draining()

    async def stop(self, timeout: float = 10.0) -> None:
        """Drain what Kafka will take within ``timeout``; leave the rest in the spool."""
        if self._drainer is not None and not self._drainer.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._drainer), timeout)
            except TimeoutError:
                self._drainer.cancel()
        for task in (*self._inflight.values(), self._connect):
            if task is not None and not task.done():
                task.cancel()
        try:
            await asyncio.wait_for(self.producer.stop(), timeout)
        except TimeoutError:
            log.warning(
                "producer did not stop within %.0fs; undelivered records stay spooled", timeout
            )
        if self.spool.pending:
            log.warning("%d spooled requests left for the next start", self.spool.pending)
        self.spool.close()

    def _count_spooled(self) -> int:
        count = 0
        while frames := self.spool.read():
            count += sum(len(_frame_decoder.decode(p)) for _, p in frames)
        self.spool.rewind()
        return count

    # -- state -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connect is not None and self._connect.done() and not self._connect.cancelled()

    @property
    def spooling(self) -> bool:
        return self._spooling

    @property
    def spooled_items(self) -> int:
        return self._spooled_items

    def status(self) -> dict[str, object]:
        full = self.spool.full_reason()
        # A full disk is reported until a write succeeds again, not only while refusing.
        reason = "disk_full" if self.spool.disk_full else ("spool_full" if full else None)
        return {
            "status": "unavailable" if reason else ("degraded" if self._spooling else "ok"),
            "kafka": "connected" if self.connected and not self._spooling else "unavailable",
            "spooling": self._spooling,
            "spooled_records": self._spooled_items,
            "spool_bytes": self.spool.pending_bytes,
            "spool_file_bytes": self.spool.file_bytes,
            "oldest_spooled_seconds": round(self.spool.oldest_age(), 3),
            **({"reason": reason, "detail": full or "disk full"} if reason else {}),
        }

    # -- accepting -------------------------------------------------------------------------

    async def submit(self, items: Sequence[Item]) -> Delivery:
        """Deliver or spool ``items``; raises SpoolFull when neither is possible now."""
        if self._spooling:
            await self._to_spool(items, None)
            return Delivery.SPOOLED
        send: asyncio.Future[None] | None = self._join_batch(items)
        assert send is not None
        try:
            await asyncio.wait_for(asyncio.shield(send), self.ack_timeout)
            return Delivery.ACKED
        except TimeoutError:
            log.warning("kafka has not acknowledged within %.1fs: spooling", self.ack_timeout)
        except Exception as exc:  # not a Kafka outage the producer retries: keep the records
            log.warning("delivery failed (%s): spooling", exc)
            send = None
        self._spooling = True
        self._start_draining()
        await self._to_spool(items, send)
        return Delivery.SPOOLED

    def _join_batch(self, items: Sequence[Item]) -> asyncio.Task[None]:
        """Requests arriving in the same loop iteration share one produce call (less
        per-request overhead); the batch closes when its task starts running."""
        if self._open_items is None:
            self._open_items = []
            self._open_task = asyncio.create_task(self._send_open_batch(self._open_items))
        self._open_items.extend(items)
        assert self._open_task is not None
        return self._open_task

    async def _send_open_batch(self, items: list[Item]) -> None:
        self._open_items = None  # later requests start the next batch
        await self._deliver(items)

    async def _to_spool(self, items: Sequence[Item], send: asyncio.Future[None] | None) -> None:
        offset = self.spool.append(encode_frame(items))
        if send is not None:
            self._inflight[offset] = send
        self._spooled_items += len(items)
        self._gauge.set(self._spooled_items)
        await self.spool.sync()

    async def _deliver(self, items: Sequence[Item]) -> None:
        events = [it for it in items if not isinstance(it, DeadLetter)]
        dead = [it for it in items if isinstance(it, DeadLetter)]
        sends = [self.producer.dead_letter(d.raw, d.reason, d.detail) for d in dead]
        if events:
            sends.append(self.producer.send_events(events))  # type: ignore[arg-type]
        await asyncio.gather(*sends)

    # -- draining --------------------------------------------------------------------------

    def _start_draining(self) -> None:
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        assert self._connect is not None
        await asyncio.shield(self._connect)
        while True:
            frames = self.spool.read()
            if not frames:
                # Nothing was appended since the read (no await in between): direct again.
                self._spooling = False
                log.info("spool drained: sending directly")
                return
            try:
                delivered = await self._deliver_frames(frames)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("draining the spool failed; retrying")
                self.spool.rewind()
                await asyncio.sleep(1.0)
                continue
            self.spool.commit(len(frames))
            self._spooled_items -= delivered
            self._gauge.set(self._spooled_items)

    async def _deliver_frames(self, frames: list[tuple[int, bytes]]) -> int:
        todo: list[Item] = []
        count = 0
        for offset, payload in frames:
            items = decode_frame(payload)
            count += len(items)
            send = self._inflight.pop(offset, None)
            if send is not None:
                # Sent directly before the outage was noticed: wait for that send, in order.
                if todo:
                    await self._deliver(todo)
                    todo = []
                try:
                    await send
                    continue
                except Exception:
                    pass  # that send gave up: the spooled copy goes instead
            todo.extend(items)
        if todo:
            await self._deliver(todo)
        return count
