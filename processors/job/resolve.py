"""Agent ``resolve``: per partition, dedupe, match, join engagements to their targets,
attribute conversions to sessions, and emit window partials as the watermark passes; the
logic is ``processors.core.resolve`` (``PartitionState``), this file its Kafka side.

Durable state is an item log: a RocksDB table (changelogged) of references, one per gate
batch with items, ``<partition>|<offset>`` -> the batch's newest event time, to the batch
itself on ``<ns>.proc.batches`` (kept until resolve deletes it: its retention is not by
time). The events are thus in Kafka once, not again in a changelog. The in-memory
``PartitionState`` is rebuilt by reading the referenced batches back when a partition is
(re)assigned; pruning deletes the references and then the records before the oldest one
still referenced (Kafka's delete-records). Every write is idempotent (keys by input offset, dedupe by
id, partials that replace themselves), so at-least-once delivery neither loses nor
double counts after a crash.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import faust
import msgspec
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.errors import KafkaError

from ingest.kafka_client import client_options
from ingest.telemetry import counter, histogram
from processors.catalogue import PROC_BATCH_SECONDS, PROC_DUPLICATES, PROC_FILTERED
from processors.core.resolve import PRUNE_STEP, PartitionState, feed
from processors.job import disk_indices
from processors.job.context import Context
from processors.job.durable import DurableTable, rocksdb_options
from processors.job.gapfill import iter_range, to_apply
from processors.job.poison import Poison
from processors.wire import (
    MALFORMED,
    GateBatch,
    MarkerRecord,
    PartialRecord,
    PartitionProgress,
    decode_gate_batch,
    decode_progress,
    pack,
)

log = logging.getLogger(__name__)

META = b"meta"
PRUNE_EVERY = 200  # batches
# Open 1m windows that changed are revised this often, by a timer: a quiet site's last
# pageview shows within it, without waiting for a next event to arrive.
PROVISIONAL_EVERY = 0.25
LIVE_EDGE = 300.0  # only a partition whose watermark is this close to now is revised


_FLOAT64 = 0xCB  # msgpack's float 64 marker: a reference (a logged batch is a msgpack map)
_unpack_float = msgspec.msgpack.Decoder(float).decode


def reference(newest: float) -> bytes:
    """An item log entry: the batch's newest event time (what pruning needs to know)."""
    return pack(float(newest))


def is_reference(value: bytes) -> bool:
    return len(value) == 9 and value[0] == _FLOAT64


def unpack_reference(value: bytes) -> float:
    return _unpack_float(value)


def marker_watermark(b: GateBatch | PartitionProgress) -> float:
    if b.flushed:
        return float("inf")
    return b.wm if b.wm is not None else float("-inf")


def register(app: faust.App, ctx: Context) -> Any:
    batches = app.topic(ctx.topics.internal("batches"), value_serializer="raw", key_serializer="raw",
                        partitions=ctx.partitions)  # fmt: skip
    partials = app.topic(ctx.topics.internal("partials"), value_serializer="raw", key_serializer="raw",
                         partitions=1)  # fmt: skip
    itemlog = DurableTable(app, app.Table(
        "itemlog", partitions=ctx.partitions, key_type=bytes, value_type=bytes,
        options=rocksdb_options(ctx.config.processing.rocksdb_block_cache_mb, ctx.partitions),
    ))  # fmt: skip
    states: dict[int, PartitionState] = {}
    s = ctx.settings
    indices_db = disk_indices.open_db(
        Path(str(app.conf.datadir)) / "indices",
        ctx.config.processing.rocksdb_block_cache_mb,
        int(max(s.dedupe_seconds, s.target_retention) + 86400),
    )
    expected: dict[int, int] = {}  # partition -> next input offset (see processors.job.gapfill)
    progress: dict[int, PartitionProgress] = {}  # partition -> its last marker
    newest: dict[int, dict[bytes, float]] = {}  # partition -> logged batch -> newest event time
    poison = Poison(app, ctx)
    processed: dict[int, int] = {}
    duplicates = counter(PROC_DUPLICATES)
    filtered = counter(PROC_FILTERED)
    timing = histogram(PROC_BATCH_SECONDS).labels(ctx.namespace, "resolve")

    @app.on_partitions_revoked.connect  # type: ignore[misc,arg-type]
    async def _revoked(app_: Any, revoked: set[Any], **kw: Any) -> None:
        for tp in revoked:
            if tp.topic == batches.get_topic_name():
                states.pop(tp.partition, None)

    async def rebuild(
        p: int,
    ) -> tuple[PartitionState, list[tuple[int, int, Any]], PartitionProgress]:
        """Replay the partition's item log in input order; windows it closed are re-sent."""
        # The partition's on-disk indices are a cache of its item log: cleared, then rebuilt.
        disk_indices.clear_partition(indices_db, p)
        seen = disk_indices.DiskSeen(indices_db, p, ctx.settings.dedupe_seconds)
        targets = disk_indices.DiskTargets(indices_db, p)
        st = PartitionState(
            ctx.tracker, ctx.classifier, ctx.settings, ctx.scorer, indices=(seen, targets)
        )
        prefix = f"{p}|".encode()
        logged = sorted(k for k in itemlog if k.startswith(prefix) and not k.endswith(META))
        closed: list[tuple[int, int, Any]] = []
        newest[p] = {}
        refs: set[int] = set()
        for key in logged:
            value = itemlog[key]
            if is_reference(value):
                newest[p][key] = unpack_reference(value)
                refs.add(int(key[len(prefix) :]))
            else:  # written before references (all older than any reference): the batch
                b = decode_gate_batch(value)
                closed += feed(st, b)[0]
                newest[p][key] = max((item[2] for item in b.items), default=float("-inf"))
        found = 0
        if refs:
            async for offset, value in iter_range(
                ctx.bootstrap, batches_name, p, min(refs), max(refs) + 1
            ):
                if offset in refs:
                    closed += feed(st, decode_gate_batch(value))[0]
                    found += 1
        if found < len(refs):
            log.error("resolve: partition %d: %d logged batches are no longer on %s",
                      p, len(refs) - found, batches_name)  # fmt: skip
        st.filtered.clear()  # counted when first applied, not again on a rebuild
        st.poisoned = 0
        raw_meta = itemlog.get(prefix + META)
        meta = (
            decode_progress(raw_meta)
            if raw_meta is not None
            else PartitionProgress(None, False, None)
        )
        closed += st.advance(marker_watermark(meta))
        log.info("resolve: partition %d rebuilt from %d logged batches", p, len(logged))
        return st, closed, meta

    partials_name = partials.get_topic_name()
    batches_name = batches.get_topic_name()

    async def send_closed(
        p: int,
        closed: list[tuple[int, int, Any]],
        b: GateBatch | PartitionProgress,
        provisional: list[tuple[int, int, Any]] | None = None,
    ) -> None:
        # Via the producer, not Topic.send (see processors.job.rollup); order per producer holds.
        # Provisional revisions of open windows go first; a window's final partial is last.
        key = str(p).encode()
        for parts, final in ((provisional or [], False), (closed, True)):
            for size, start, part in parts:
                msg = PartialRecord(p, size, start, part.to_wire(), final)
                await app.producer.send(partials_name, key, pack(msg), 0, None, None)
        marker = MarkerRecord(p, None if b.flushed else b.wm, b.flushed, b.max_ts)
        await app.producer.send(partials_name, key, pack(marker), 0, None, None)

    @app.timer(interval=PROVISIONAL_EVERY)  # type: ignore[misc]
    async def revise_open_windows() -> None:
        # Between two awaits of ``apply`` the state is whole (``feed`` does not await), and a
        # window closed there is gone from ``provisional()``: its final partial is never
        # overtaken by a provisional one.
        key_of = {p: str(p).encode() for p in states}
        live_edge = time.time() - LIVE_EDGE
        for p, st in list(states.items()):
            if not st.dirty or states.get(p) is not st:
                continue
            if st.watermark < live_edge:
                # History played fast (a replay, a backlog): its windows are final within
                # seconds anyway, and revising them would cost more than the work itself.
                st.dirty.clear()
                continue
            for size, start, part in st.provisional():
                msg = PartialRecord(p, size, start, part.to_wire(), False)
                await app.producer.send(partials_name, key_of[p], pack(msg), 0, None, None)

    @app.agent(batches, name="resolve")
    async def resolve(stream: Any) -> None:
        try:
            await _resolve(stream)
        except Exception as exc:  # a bug, not bad input (the gate validated it): stop loudly
            log.exception("resolve crashed; stopping the worker")
            await app.crash(exc)
            raise

    async def _resolve(stream: Any) -> None:
        async for event in stream.events():
            p = event.message.partition
            offset = event.message.offset
            if p not in states:
                states[p], resend, meta = await rebuild(p)
                expected[p] = meta.next
                progress[p] = meta
                await send_closed(p, resend, meta)
            for o, value in await to_apply(ctx.bootstrap, batches_name, p, expected[p], offset,
                                           event.value, f"resolve partition {p}"):  # fmt: skip
                await apply(p, o, value)

    async def apply(p: int, offset: int, value: bytes) -> None:
        started = time.perf_counter()
        st = states[p]
        where = f"{batches_name}[{p}]@{offset}"
        try:
            b = decode_gate_batch(value)  # items checked against wire.Item's constraints
        except MALFORMED as exc:
            # A crafted or corrupt record (the gate never writes one): to the DLQ with the
            # reason, never a crash loop; nothing of it is applied.
            await poison.send(value, "invalid_internal_record", f"{where}: {exc}")
            last = progress[p]
            b = GateBatch(last.wm, last.flushed, last.max_ts, [])
        closed, dups = feed(st, b)
        if st.poisoned:  # items whose event did not decode were skipped one by one
            await poison.send(value, "invalid_internal_record", f"{where}: {st.poisoned} bad items")
            st.poisoned = 0
        if b.items:
            key = f"{p}|{offset:020d}".encode()
            latest = max(item[2] for item in b.items)
            await itemlog.put(p, key, reference(latest))  # the batch stays on proc.batches
            newest.setdefault(p, {})[key] = latest
        meta = PartitionProgress(b.wm, b.flushed, b.max_ts, offset + 1)
        progress[p] = meta
        await itemlog.put(p, f"{p}|".encode() + META, pack(meta))
        expected[p] = offset + 1
        ctx.applied[(batches_name, p)] = offset + 1
        closed += st.advance(marker_watermark(b))
        await send_closed(p, closed, b)
        if dups:
            duplicates.labels(ctx.namespace, "all").inc(dups)
        for platform, n in st.filtered.items():
            filtered.labels(ctx.namespace, platform).inc(n)
        st.filtered.clear()
        processed[p] = processed.get(p, 0) + 1
        if processed[p] % PRUNE_EVERY == 0:
            await prune(p, st)
        timing.observe(time.perf_counter() - started)

    async def prune(p: int, st: PartitionState) -> None:
        """Drop logged batches older than every retention (dedupe, targets, open windows)."""
        s = ctx.settings
        if st.watermark in (float("inf"), float("-inf")):
            return
        # What a rebuild needs: every id still deduped, target still joinable and session
        # pageview still attributable (a conversion looks back ``attribution``).
        longest = max(s.dedupe_seconds, s.target_retention, s.attribution)
        horizon = st.watermark - longest - 3600 - s.lateness - PRUNE_STEP
        logged = newest.get(p, {})
        doomed = [k for k, ts in logged.items() if ts < horizon]  # no batch is decoded
        for key in doomed:
            await itemlog.delete(p, key)
            del logged[key]
        if doomed:
            # Records before the oldest batch still referenced are needed by no rebuild. The
            # references' deletions go first (above); a crash between leaves records that a
            # later prune deletes.
            keep_from = min((int(k[len(f"{p}|") :]) for k in logged), default=expected[p])
            await trim_batches(p, keep_from)

    admin: list[AIOKafkaAdminClient] = []

    async def trim_batches(p: int, before: int) -> None:
        try:
            if not admin:
                client = AIOKafkaAdminClient(**client_options(ctx.bootstrap, "aiokafka"))
                await client.start()
                admin.append(client)
            await admin[0].delete_records(
                {TopicPartition(batches_name, p): RecordsToDelete(before)}
            )
        except KafkaError as exc:  # the next prune tries again
            log.warning(
                "resolve: could not delete %s-%d before %d: %s", batches_name, p, before, exc
            )

    return resolve
