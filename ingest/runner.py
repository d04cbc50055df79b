"""Drive one source: produce its batches, then checkpoint, in that order.

For every batch: rejected payloads go to ``<ns>.dlq`` (with reason headers), events to
``<ns>.events``; both calls return only once Kafka acknowledged them, and only then is the
batch's cursor written to the cursor store. A crash anywhere before that resumes from the
previous cursor, so nothing acknowledged upstream is ever lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from ingest.cursors import CursorStore
from ingest.events import Event, InvalidEvent, check_bounds, encode_event, event_ts
from ingest.metricdefs import INGEST_LAG, INGEST_LAST_EVENT
from ingest.sources.base import Batch, Source
from ingest.telemetry import gauge

log = logging.getLogger(__name__)


class Producer(Protocol):
    """What the runner needs of ``ingest.producer.EventProducer``."""

    async def send_events(self, events: list[Event]) -> None: ...

    async def dead_letter(
        self, raw: bytes, reason: str, detail: str, source: str | None = None
    ) -> None: ...


@dataclass
class RunStats:
    batches: int = 0
    events: int = 0
    rejected: int = 0
    checkpoints: int = 0
    newest_ts: float | None = None


async def process_batch(
    source: Source, batch: Batch, producer: Producer, cursor_store: CursorStore, stats: RunStats
) -> None:
    for rej in batch.rejected:
        await producer.dead_letter(rej.raw, rej.reason, rej.detail, source=source.name)
    events = await refuse_out_of_bounds(source.name, batch.events, producer)
    if events:
        await producer.send_events(events)
        newest = max(event_ts(ev) for ev in events)
        if stats.newest_ts is None or newest > stats.newest_ts:
            stats.newest_ts = newest
            gauge(INGEST_LAST_EVENT).labels(source.name).set(newest)
        # Lag of this batch's newest event: how far behind the platform we are right now.
        gauge(INGEST_LAG).labels(source.name).set(max(0.0, time.time() - newest))
    if batch.cursor is not None:
        cursor_store.save(source.name, batch.cursor)  # after the acks above, never before
        source.cursor = batch.cursor
        stats.checkpoints += 1
    stats.batches += 1
    stats.events += len(events)
    stats.rejected += len(batch.rejected) + len(batch.events) - len(events)


async def refuse_out_of_bounds(name: str, events: list[Event], producer: Producer) -> list[Event]:
    """EVENTS.md's bounds at the door: a platform item dated in the future (or any other
    bound broken) becomes a dead letter here instead of reaching ``<ns>.events``."""
    kept: list[Event] = []
    for ev in events:
        try:
            check_bounds(ev)
        except InvalidEvent as exc:
            await producer.dead_letter(encode_event(ev), exc.reason, exc.detail, source=name)
        else:
            kept.append(ev)
    return kept


async def run_source(
    source: Source,
    producer: Producer,
    cursor_store: CursorStore,
    *,
    stop: asyncio.Event | None = None,
    stats: RunStats | None = None,
) -> RunStats:
    """Run until the source is exhausted or ``stop`` is set; returns what was done."""
    stats = stats if stats is not None else RunStats()
    batches = source.batches()
    try:
        while stop is None or not stop.is_set():
            nxt = asyncio.ensure_future(anext(batches))
            if stop is not None:
                stopper = asyncio.ensure_future(stop.wait())
                done, _ = await asyncio.wait({nxt, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if nxt not in done:
                    nxt.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await nxt
                    break
                stopper.cancel()
            try:
                batch = await nxt
            except StopAsyncIteration:
                break
            await process_batch(source, batch, producer, cursor_store, stats)
    finally:
        aclose = getattr(batches, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
        await source.aclose()
    log.info(
        "%s: stopped after %d events, %d dead letters, %d checkpoints",
        source.name, stats.events, stats.rejected, stats.checkpoints,
    )  # fmt: skip
    return stats
