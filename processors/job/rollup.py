"""Agent ``rollup``: merge every partition's partials into final window rows; the merging
itself is ``processors.core.rollup``, this file its Kafka side (journal, emits, rebuild).

Consumes the single-partition ``<ns>.proc.partials`` topic. A window is final once all
partitions' markers passed its end plus the allowed lateness; its rows go to
``<ns>.results`` (key = row identity, so the topic compacts to the last revision), its
1m counts to the Prometheus counters and, as one ``WindowCounts`` record beside the rows,
to ``<ns>.results`` for backfill; the stream alerts' transitions become alert rows and go
to Alertmanager (``processors.job.alerts``). After a replay's flush, a ``complete``
record tells readers that every window is final.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import faust
import msgspec
import orjson

from ingest.telemetry import counter
from processors.catalogue import PROC_WINDOWS_CLOSED
from processors.core.counters import WindowCounters, window_counts
from processors.core.resolve import Partial
from processors.core.results import Row, identity
from processors.core.rollup import MINUTE, Rollup, alert_row
from processors.core.stream_alerts import Transition, rules_of
from processors.job.alerts import AlertSink
from processors.job.context import Context
from processors.job.durable import DurableTable, rocksdb_options
from processors.job.gapfill import to_apply
from processors.job.journal_slots import JournalSlots
from processors.job.poison import Poison
from processors.wire import (
    COMPLETE_KEY,
    COUNTS_KEY_PREFIX,
    MALFORMED,
    Completion,
    MarkerRecord,
    PartialRecord,
    RollupInput,
    WindowCounts,
    decode_rollup_input,
    encode_json,
)

log = logging.getLogger(__name__)

_unpack = msgspec.msgpack.Decoder().decode
_pack = msgspec.msgpack.Encoder().encode
ALERTS_KEY = b"~alerts"  # the stream alerts' state (series, firing, next boundary)
SNAPSHOT_EVERY = 30.0  # seconds between saves of the stream alerts' state
NEXT_KEY = b"~next"  # the next input offset (see processors.job.gapfill)
# Window slots (open or final) noted before a compaction is tried; the environment can
# lower it (the kill -9 test compacts at every final window, to rebuild from a compacted log).
COMPACT_AT = int(os.environ.get("RIPPLE_ROLLUP_COMPACT_AT", "500"))


def _is_entry(key: bytes) -> bool:
    return not key.startswith(b"~")  # offsets; "~" keys hold the journal's own state


def register(app: faust.App, ctx: Context) -> Any:
    partials = app.topic(ctx.topics.internal("partials"), value_serializer="raw", key_serializer="raw",
                         partitions=1)  # fmt: skip
    results = app.topic(
        ctx.topics.results, value_serializer="raw", key_serializer="raw", partitions=1
    )
    partials_name = partials.get_topic_name()
    journal = DurableTable(app, app.Table(
        "rollup", partitions=1, key_type=bytes, value_type=bytes,
        options=rocksdb_options(ctx.config.processing.rocksdb_block_cache_mb, 1),
    ))  # fmt: skip
    alerts_topic = app.topic(
        ctx.topics.alerts, value_serializer="raw", key_serializer="raw", partitions=1
    )
    sink = AlertSink(ctx)
    poison = Poison(app, ctx)
    sink.bind(alerts_topic)

    @app.timer(interval=60.0)  # type: ignore[misc]
    async def keep_alerts_firing() -> None:
        await sink.refresh()

    holder: dict[str, Rollup] = {}
    slots = JournalSlots(ctx.lateness)  # what of the journal still counts

    @app.on_partitions_revoked.connect  # type: ignore[misc,arg-type]
    async def _revoked(app_: Any, revoked: set[Any], **kw: Any) -> None:
        # Another worker may own the rollup meanwhile: if it comes back, rebuild from the
        # journal (which then holds that worker's entries too), not from stale memory.
        if any(tp.topic == partials.get_topic_name() for tp in revoked):
            holder.pop("r", None)

    closed_windows = counter(PROC_WINDOWS_CLOSED)

    rules = rules_of(ctx.config)

    def new_rollup() -> Rollup:
        return Rollup(ctx.partitions, ctx.tracker.brands, ctx.lateness, rules)

    def apply(r: Rollup, msg: RollupInput) -> bool:
        """Apply one record; False when the rollup ignored it (see ``Rollup.add_partial``)."""
        if isinstance(msg, PartialRecord):
            part = Partial.from_wire(msg.partial)
            return r.add_partial(msg.p, msg.size, msg.start, part, msg.final)
        wm = float("inf") if msg.flushed else (msg.wm if msg.wm is not None else float("-inf"))
        r.mark(msg.p, wm, msg.max_ts if msg.max_ts is not None else float("-inf"))
        return True

    async def rebuild() -> tuple[Rollup, list[Row], list[Transition]]:
        """Replay the journal; what it finalises is emitted again (idempotent by row key)."""
        r = new_rollup()
        slots.clear()
        saved = journal.get(ALERTS_KEY)
        if saved is not None:
            r.alerts.restore(_unpack(saved))
        keys = sorted(k for k in journal if _is_entry(k))
        obsolete: list[bytes] = []
        for key in keys:
            msg = decode_rollup_input(journal[key])  # only valid records are journaled
            obsolete += slots.note(key, msg, apply(r, msg))
        for key in obsolete:  # journaled before slots were noted: superseded revisions
            await journal.delete(0, key)
        rows, alerts = r.finalize()
        log.info("rollup: rebuilt from %d journal entries", len(keys))
        return r, rows, alerts

    live_counters = WindowCounters(ctx.namespace)

    async def emit(r: Rollup, rows: list[Row], alerts: list[Transition], count: bool) -> None:
        # Straight to the producer: faust's Topic.send costs ~1 ms a record, and a window
        # close emits hundreds of rows. faust flushes the producer before it commits offsets.
        results_topic = ctx.topics.results
        for row_ in rows:
            await app.producer.send(
                results_topic, orjson.dumps(identity(row_)), orjson.dumps(row_), 0, None, None
            )
        for start, merged in r.final_minutes:
            if count:
                live_counters.advance(start, merged, final=True)
            counts = WindowCounts(start, [(name, list(labels), v) for (name, labels), v
                                          in sorted(window_counts(merged).items())])  # fmt: skip
            await app.producer.send(results_topic, COUNTS_KEY_PREFIX + str(start).encode(),
                                    encode_json(counts), 0, None, None)  # fmt: skip
        for t, alertname, labels, value in alerts:
            a = alert_row(t, alertname, labels, value)
            await app.producer.send(
                results_topic, orjson.dumps(identity(a)), orjson.dumps(a), 0, None, None
            )
            await sink.publish(a)
        # One count per window made final (a replay's flush finalises many at once).
        for w, _start in {(x["window"], x["window_start"]) for x in rows}:
            closed_windows.labels(ctx.namespace, w).inc()
        # The alerts' state is a week of series: written when an alert changes, before a
        # compaction drops the partials it was built from, and every 30 s, not per window.
        if alerts or (rows and time.monotonic() - saved_at[0] > SNAPSHOT_EVERY):
            await save_alerts(r)

    saved_at = [0.0]

    async def save_alerts(r: Rollup) -> None:
        await journal.put(0, ALERTS_KEY, _pack(r.alerts.snapshot()))
        saved_at[0] = time.monotonic()

    @app.agent(partials, name="rollup")
    async def rollup(stream: Any) -> None:
        try:
            await _rollup(stream)
        except Exception as exc:  # a bug: stop loudly instead of a restart loop
            log.exception("rollup crashed; stopping the worker")
            await app.crash(exc)
            raise

    async def _rollup(stream: Any) -> None:
        async for event in stream.events():
            r = holder.get("r")
            if r is None:
                r, rows, alerts = await rebuild()
                holder["r"] = r
                await emit(r, rows, alerts, count=False)
            offset = event.message.offset
            expected = _unpack(journal.get(NEXT_KEY) or _pack(0))
            for o, value in await to_apply(ctx.bootstrap, partials_name, 0, expected, offset,
                                           event.value, "rollup"):  # fmt: skip
                await step(r, o, value)

    async def step(r: Rollup, offset: int, value: bytes) -> None:
        ctx.applied[(partials_name, 0)] = offset + 1
        try:
            msg = decode_rollup_input(value)  # typed to the last field: malformed fails here
        except MALFORMED as exc:
            await poison.send(value, "invalid_internal_record", f"{partials_name}@{offset}: {exc}")
            await journal.put(0, NEXT_KEY, _pack(offset + 1))
            return
        key = f"{offset:020d}".encode()
        await journal.put(0, key, value)
        await journal.put(0, NEXT_KEY, _pack(offset + 1))
        for obsolete in slots.note(key, msg, apply(r, msg)):
            await journal.delete(0, obsolete)
        if isinstance(msg, PartialRecord) and not msg.final and msg.size == MINUTE:
            live = r.current(msg.size, msg.start)
            if live is not None:
                live_counters.advance(msg.start, live, final=False)
        rows, alerts = r.finalize()
        await emit(r, rows, alerts, count=True)
        if rows:
            await compact(r)
        if r.complete and isinstance(msg, MarkerRecord):
            await results.send(key=COMPLETE_KEY, value=encode_json(Completion()))

    async def compact(r: Rollup) -> None:
        """Forget the journal entries of windows made final, in bulk: the stream alerts'
        state they fed is saved first (a week of series: not once per window)."""
        if len(slots.ends) < COMPACT_AT:
            return
        done = slots.finalized(r.finalized_through)
        if not done:
            return
        await save_alerts(r)  # what the dropped partials fed into the alerts stays known
        for key in done:
            await journal.delete(0, key)

    return rollup
