"""The gate: the lean first stage in front of faust's stateful agents.

One active gate per namespace (every worker runs one; ``AllToOneAssignor`` makes the
first member of the group own every partition and the others hot standbys) reads
``<ns>.events`` in large aiokafka batches and, per record:

- decodes and validates it (invalid → ``<ns>.dlq`` with the original bytes and reason);
- advances the namespace's event-time watermark (the largest event time seen) and flags
  the window sizes the event is late for — one global watermark, as METRICS.md defines it;
- routes it to the stateful stage's partition where what must meet lands together
  (see ``routes``), packing many events into one record per partition, so faust's
  per-record cost is paid per batch, not per event.

Output and dead letters are acknowledged before the input offsets are committed, and the
watermark rides in the offsets' commit metadata: a killed gate (or a zombie) re-runs a
batch from the same committed state, producing the very same items, which the stateful
stage de-duplicates by id. No transaction is needed, and none can fence a worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)
from aiokafka.errors import CommitFailedError, IllegalStateError
from kafka.admin import KafkaAdminClient

from ingest.kafka_client import Brokers, client_options
from ingest.producer import dead_letter_headers
from ingest.telemetry import counter, gauge
from ingest.topics import Topics
from processors.catalogue import (
    PROC_CONSUMER_LAG,
    PROC_DEAD_LETTERS,
    PROC_EVENTS,
    PROC_FRESHNESS,
    PROC_LAST_EVENT,
    PROC_LATE,
    PROC_WATERMARK,
)
from processors.core.gate import GateStep
from processors.wire import (
    MALFORMED,
    GateBatch,
    GateCheckpoint,
    GateReport,
    decode_checkpoint,
    decode_flush_request,
    encode_json,
    pack,
)

log = logging.getLogger(__name__)

# Seconds a batch may wait for more records after its first: live latency spends this
# much to keep the agents' per-batch costs at a few batches a second.
LINGER = 0.1


class AllToOneAssignor(AbstractPartitionAssignor):
    """Every partition to one member (the lowest member id): a singleton with standbys."""

    name = "ripple-all-to-one"
    version = 0

    @classmethod
    def assign(
        cls, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        leader = min(members)
        topics = sorted({t for m in members.values() for t in m.subscription})
        owned = [(t, sorted(cluster.partitions_for_topic(t) or ())) for t in topics]
        return {
            m: ConsumerProtocolMemberAssignment(cls.version, owned if m == leader else [], b"")
            for m in members
        }

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        return ConsumerProtocolMemberMetadata(cls.version, list(topics), b"")

    @classmethod
    def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
        pass


GateState = GateCheckpoint  # the name the gate has always used for it


class Gate:
    def __init__(
        self,
        bootstrap: Brokers,
        namespace: str,
        partitions: int,
        lateness: float,
        max_event_bytes: int = 65536,
        batch_records: int = 5000,
        max_future: float = 300.0,
        excluded: frozenset[tuple[str, str]] = frozenset(),
        report: Callable[[GateReport], None] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = Topics(namespace)
        self.namespace = namespace
        self.partitions = partitions
        self.lateness = lateness
        self.max_event_bytes = max_event_bytes
        self.batch_records = batch_records
        self.max_future = max_future
        self.excluded = excluded
        self.group = f"{namespace}.gate"
        self.out_topic = self.topics.internal("batches")
        self.control_topic = self.topics.internal("control")
        self.state = GateState()
        self.flush_at: dict[int, int] | None = None
        self._needs_recovery = True
        self._stopping = asyncio.Event()
        # Where each batch's report goes: this process's metrics, or the worker's (a gate in
        # its own process, processors.job.gate_process).
        self.report = report if report is not None else GateMetrics(namespace).apply
        self._lag_exported = 0.0

    def stop(self) -> None:
        self._stopping.set()

    # -- state recovery from the commit metadata --------------------------------------
    def _recover(self) -> None:
        admin = KafkaAdminClient(
            **client_options(self.bootstrap, "kafka-python"), client_id=f"{self.group}-recover"
        )
        try:
            offsets = admin.list_group_offsets({self.group: None}).get(self.group, {})
        finally:
            admin.close()
        self.state = GateState()
        self.flush_at = None
        for tp, om in offsets.items():
            if tp.topic == self.topics.events and om.metadata:
                saved = decode_checkpoint(om.metadata)
                if saved.watermark is not None and (
                    self.state.watermark is None or saved.watermark > self.state.watermark
                ):
                    self.state = saved
            if tp.topic == self.control_topic and om.metadata:
                self.flush_at = {int(k): v for k, v in orjson.loads(om.metadata).items()} or None

    # -- main loop -----------------------------------------------------------------
    async def run(self) -> None:
        gate = self

        class Listener(ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked: Any) -> None:
                pass

            async def on_partitions_assigned(self, assigned: Any) -> None:
                log.info("gate %s: %d partitions assigned", gate.namespace, len(assigned))
                gate._needs_recovery = True

        consumer = AIOKafkaConsumer(
            **client_options(self.bootstrap, "aiokafka"),
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            partition_assignment_strategy=(AllToOneAssignor,),
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=32 * 1024 * 1024,
            session_timeout_ms=10000,
            heartbeat_interval_ms=2000,
        )
        consumer.subscribe([self.topics.events, self.control_topic], listener=Listener())
        producer = AIOKafkaProducer(
            **client_options(self.bootstrap, "aiokafka"),
            enable_idempotence=True,
            acks="all",
            linger_ms=5,  # uncompressed: an internal topic on the same host, CPU is the limit
            max_batch_size=1024 * 1024,
            max_request_size=16 * 1024 * 1024,
        )
        log.info("gate %s: starting (group %s)", self.namespace, self.group)
        await producer.start()
        await consumer.start()
        try:
            while not self._stopping.is_set():
                batch = await self._gather(consumer)
                if self._needs_recovery and consumer.assignment():
                    await asyncio.get_running_loop().run_in_executor(None, self._recover)
                    self._needs_recovery = False
                    log.info("gate %s: recovered %s", self.namespace, self.state)
                await self._export_lag(consumer)
                if not batch and not await self._flush_due(consumer):
                    continue
                try:
                    await self._process(batch, consumer, producer)
                except (CommitFailedError, IllegalStateError) as exc:
                    # Our partitions moved to another gate mid-batch; it re-runs this batch
                    # from the last committed state (duplicates are dropped downstream).
                    log.warning("gate %s: lost the input partitions (%s)", self.namespace, exc)
                    self._needs_recovery = True
        finally:
            await consumer.stop()
            await producer.stop()

    async def _gather(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, list[Any]]:
        """One batch: up to ``batch_records``, or what ``LINGER`` seconds bring after the
        first record. Every batch costs each stage partition a record, an item-log write
        and a marker through the rollup; at live rates getmany returns a few records a
        millisecond, and batches that small saturated the agents at 5,000 events/s."""
        batch = await consumer.getmany(timeout_ms=200, max_records=self.batch_records)
        n = sum(map(len, batch.values()))
        deadline = time.monotonic() + LINGER
        # Only a trickle waits: a backlog's batches come big, and holding them back to fill
        # them cost a fifth of the throughput (bench/processors.py).
        if n >= self.batch_records // 10:
            return batch
        while 0 < n < self.batch_records and (left := deadline - time.monotonic()) > 0:
            more = await consumer.getmany(
                timeout_ms=max(1, int(left * 1000)), max_records=self.batch_records - n
            )
            for tp, records in more.items():
                batch.setdefault(tp, []).extend(records)
                n += len(records)
        return batch

    async def _export_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Records between each input partition's end and the gate's position (every 5 s)."""
        now = time.monotonic()
        if now - self._lag_exported < 5:
            return
        self._lag_exported = now
        lag = []
        for tp in consumer.assignment():
            hw = consumer.highwater(tp)
            if hw is not None:
                lag.append((tp.topic, tp.partition, max(0, hw - await consumer.position(tp))))
        if lag:
            self.report(GateReport(lag=lag))

    async def _flush_due(self, consumer: AIOKafkaConsumer) -> bool:
        """A replay asked for the final flush and the gate has read up to its offsets."""
        if self.flush_at is None or self.state.flushed:
            return False
        assigned = consumer.assignment()
        for p, end in self.flush_at.items():
            tp = TopicPartition(self.topics.events, p)
            if tp not in assigned or await consumer.position(tp) < end:
                return False
        return True

    async def _process(
        self,
        batch: dict[TopicPartition, list[Any]],
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
    ) -> None:
        started = time.perf_counter()
        state = self.state
        wm = state.watermark if state.watermark is not None else float("-inf")
        if state.flushed:
            wm = float("inf")
        max_ts = state.max_ts if state.max_ts is not None else float("-inf")
        step = GateStep(
            self.partitions,
            self.lateness,
            watermark=wm,
            max_ts=max_ts,
            max_event_bytes=self.max_event_bytes,
            max_future=self.max_future,
            excluded=self.excluded,
        )
        offsets: dict[TopicPartition, int] = {}
        for tp, records in batch.items():
            offsets[tp] = records[-1].offset + 1
            if tp.topic == self.control_topic:
                for rec in records:
                    problem = self._control(rec.value)
                    if problem:
                        step.dead.append((rec.value or b"", "invalid_control_record", problem))
                continue
            for rec in records:
                step.add(rec.value or b"")
        wm, max_ts, out, dead = step.wm, step.max_ts, step.out, step.dead
        if not state.flushed and await self._flush_due(consumer):
            state = GateState(state.watermark, state.max_ts, flushed=True)
            wm = float("inf")
        new_state = GateState(
            None if wm == float("-inf") else (state.watermark if wm == float("inf") else wm),
            None if max_ts == float("-inf") else max_ts,
            state.flushed,
        )
        marker_wm = None if new_state.flushed else new_state.watermark
        meta = encode_json(new_state).decode()
        # Output and dead letters first, acknowledged; only then the input offsets (with the
        # watermark in their metadata). A crash in between re-runs the batch from the same
        # committed state, so the re-run's items are exact duplicates, which resolve drops.
        sent = [
            await producer.send(
                self.out_topic,
                pack(GateBatch(marker_wm, new_state.flushed, new_state.max_ts, items)),  # type: ignore[arg-type]
                partition=p,
            )
            for p, items in enumerate(out)
        ]
        sent += [
            await producer.send(
                self.topics.dlq, raw, headers=dead_letter_headers("processors", reason, detail)
            )
            for raw, reason, detail in dead
        ]
        await asyncio.gather(*sent)
        commit: dict[TopicPartition, Any] = {}
        flush_meta = orjson.dumps({str(k): v for k, v in (self.flush_at or {}).items()}).decode()
        for tp, off in offsets.items():
            commit[tp] = (off, flush_meta if tp.topic == self.control_topic else meta)
        if commit:
            await consumer.commit(commit)
        self.state = new_state
        self.report(GateReport(
            [(platform, kind, n) for (platform, kind), n in step.counts.items()],
            [reason for _, reason, _ in dead], list(step.late.items()), new_state.watermark,
            list(step.newest.items()),
        ))  # fmt: skip
        log.debug(
            "gate batch: %d records in %.1f ms",
            sum(map(len, batch.values())),
            (time.perf_counter() - started) * 1000,
        )

    def _control(self, value: bytes | None) -> str | None:
        """Apply a flush request; what is wrong with it when it is malformed (a dead letter)."""
        try:
            req = decode_flush_request(value or b"")
        except MALFORMED as exc:
            log.warning("dead-lettering a malformed control record: %s", exc)
            return f"not a flush request: {exc}"
        self.flush_at = dict(req.flush_at)
        return None


class GateMetrics:
    """The gate's metrics, from its batch reports (in the process that serves /metrics)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._events = counter(PROC_EVENTS)
        self._dead = counter(PROC_DEAD_LETTERS)
        self._late = counter(PROC_LATE)
        self._wm = gauge(PROC_WATERMARK)
        self._last = gauge(PROC_LAST_EVENT)
        self._fresh = gauge(PROC_FRESHNESS)
        self._lag = gauge(PROC_CONSUMER_LAG)
        self._newest: dict[str, float] = {}

    def apply(self, r: GateReport) -> None:
        ns = self.namespace
        for source, kind, n in r.counts:
            self._events.labels(ns, source, kind).inc(n)
        for reason in r.dead:
            self._dead.labels(ns, reason).inc()
        for window, n in r.late:
            self._late.labels(ns, window, "window_closed").inc(n)
        for topic, partition, behind in r.lag:
            self._lag.labels(ns, topic, str(partition)).set(behind)
        if r.watermark is not None:
            self._wm.labels(ns).set(r.watermark)
        for platform, ts in r.newest:
            if ts > self._newest.get(platform, float("-inf")):
                self._newest[platform] = ts
        if r.counts or r.newest:
            now = time.time()
            for source, ts in self._newest.items():
                self._last.labels(ns, source).set(ts)
                self._fresh.labels(ns, source).set(max(0.0, now - ts))
