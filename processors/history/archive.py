"""Archive ``<ns>.events`` to daily zstd JSON Lines files, the input of later replays.

Records are written verbatim, one per line, to ``DIR/<ns>/YYYY-MM-DD.jsonl.zst`` where the
day is the record timestamp's (the event time, EVENTS.md) in UTC. Each flush appends one
complete zstd frame per day file it touches and fsyncs it, then saves the checkpoint
(``archive_state``), then commits the offsets to the consumer group ``<ns>.archive`` (which
monitoring reads as the archive's lag; the checkpoint, atomic with the files, is what a
restart goes on from, so a crash anywhere neither skips nor repeats a record).

The partitions are merged by record timestamp as they are consumed (``aligned``), each
keeping its own order, so a replay of the files sees the event-time order a reader of the
whole topic would; records held back for that are not in the checkpoint yet, so a restart
reads them again.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from ingest.kafka_client import Brokers, client_options
from ingest.topics import Topics
from processors.history import archive_state as st
from processors.history.aligned import AlignedMerge
from processors.history.partition_readers import PartitionReaders
from processors.history.zstd_frames import compress_frame

log = logging.getLogger(__name__)


@dataclass
class ArchiveStats:
    records: int = 0
    frames: int = 0
    bytes: int = 0
    skipped_empty: int = 0  # tombstones (no value): nothing to replay
    recompacted: int = 0  # JSON spread over several lines, written on one
    files: set[str] = field(default_factory=set)


def day_of(ts_ms: int) -> str:
    return datetime.fromtimestamp(max(ts_ms, 0) / 1000, tz=UTC).date().isoformat()


def as_line(value: bytes) -> tuple[bytes, bool]:
    """The record as one JSON Lines line; True when it had to be rewritten to fit on one."""
    if b"\n" not in value and b"\r" not in value:
        return value, False
    try:
        return orjson.dumps(orjson.loads(value)), True  # the same JSON, on one line
    except orjson.JSONDecodeError:
        # Not JSON anyway (the replay sends it to the DLQ): keep its bytes, as a JSON string.
        return orjson.dumps(value.decode("utf-8", "replace")), True


class Archiver:
    def __init__(
        self,
        bootstrap: Brokers,
        namespace: str,
        root: str | Path,
        *,
        flush_records: int = 50_000,
        flush_seconds: float = 5.0,
        level: int = 3,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = Topics(namespace).events
        self.group = f"{namespace}.archive"
        self.dir = Path(root) / namespace
        self.flush_records = flush_records
        self.flush_seconds = flush_seconds
        self.level = level
        self.hold = 2 * flush_records
        self.stats = ArchiveStats()
        self.flushes = 0

    def run(self, follow: bool = False, stop: Callable[[], bool] = lambda: False) -> ArchiveStats:
        """Archive up to the end offsets of the start (or, with ``follow``, until ``stop()``)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with st.lock(self.dir):
            cp = st.recover(self.dir, self.topic)
            # Metadata, end offsets and the group's commits; records come from PartitionReaders.
            admin = KafkaConsumer(
                **client_options(self.bootstrap, "kafka-python"),
                group_id=self.group,
                enable_auto_commit=False,
            )
            try:
                while not self._consume(admin, cp, follow, stop):
                    pass  # partitions were added: go on from the checkpoint with all of them
            finally:
                admin.close()
        return self.stats

    def _starts(self, admin: KafkaConsumer, cp: st.Checkpoint) -> dict[int, int]:
        """Per partition, where to read from: the checkpoint, else the beginning."""
        parts = admin.partitions_for_topic(self.topic)
        if not parts:
            raise st.ArchiveError(f"topic {self.topic} does not exist")
        first = admin.beginning_offsets([TopicPartition(self.topic, p) for p in parts])
        starts = {}
        for tp, begin in sorted(first.items()):
            at = cp.offsets.get(tp.partition, begin)
            if at < begin:
                log.warning("%s: records %d..%d expired before they were archived",
                            tp, at, begin - 1)  # fmt: skip
            starts[tp.partition] = max(at, begin)
        return starts

    def _ends(self, admin: KafkaConsumer, parts: Iterable[int]) -> dict[int, int]:
        ends = admin.end_offsets([TopicPartition(self.topic, p) for p in parts])
        return {tp.partition: off for tp, off in ends.items()}

    def _consume(
        self, admin: KafkaConsumer, cp: st.Checkpoint, follow: bool, stop: Callable[[], bool]
    ) -> bool:
        """Archive until done (True) or until partitions were added (False)."""
        starts = self._starts(admin, cp)
        parts = sorted(starts)
        ends = self._ends(admin, parts)
        merge = AlignedMerge(parts)
        released: list[Any] = []
        last_flush = last_ends = time.monotonic()
        readers = PartitionReaders(self.bootstrap, self.topic, starts)
        try:
            while True:
                caught_up = {p for p in parts if readers.position(p) >= ends[p]}
                # A partition far ahead in event time is left unread until the others catch up.
                ahead = merge.ahead(caught_up, self.hold)
                for p in parts:
                    if p not in ahead and (follow or p not in caught_up):
                        merge.add(p, readers.poll(p, 100, min(10_000, self.flush_records)))
                if follow and time.monotonic() - last_ends > 1:  # the end moves while following
                    ends, last_ends = self._ends(admin, parts), time.monotonic()
                positions = {p: readers.position(p) for p in parts}
                caught_up = {p for p in parts if positions[p] >= ends[p]}
                released += merge.release(caught_up)
                at_end = not follow and len(caught_up) == len(parts) and not merge.held()
                done = at_end or stop()
                due = len(released) >= self.flush_records or (
                    time.monotonic() - last_flush >= self.flush_seconds
                )
                if done or due:
                    self._flush(admin, cp, released, merge.next_offsets(positions))
                    released, last_flush = [], time.monotonic()
                    if done:
                        return True
                    if follow and set(admin.partitions_for_topic(self.topic) or ()) != set(parts):
                        return False
        finally:
            readers.close()

    def _flush(
        self,
        consumer: KafkaConsumer,
        cp: st.Checkpoint,
        records: list[Any],
        offsets: dict[int, int],
    ) -> None:
        if not records and offsets == cp.offsets:
            return
        days: dict[str, list[bytes]] = {}
        for rec in records:
            if rec.value is None:
                self.stats.skipped_empty += 1
                continue
            line, rewritten = as_line(rec.value)
            self.stats.recompacted += rewritten
            days.setdefault(day_of(rec.timestamp), []).append(line)
        new_file = False
        for day, lines in sorted(days.items()):
            frame = compress_frame(b"\n".join(lines) + b"\n", self.level)
            path = self.dir / f"{day}{st.SUFFIX}"
            new_file |= not path.exists()
            with path.open("ab") as fh:
                fh.write(frame)
                fh.flush()
                os.fsync(fh.fileno())
                cp.sizes[path.name] = fh.tell()
            self.stats.records += len(lines)
            self.stats.frames += 1
            self.stats.bytes += len(frame)
            self.stats.files.add(path.name)
        if new_file:
            st.fsync_dir(self.dir)
        cp.offsets = dict(offsets)
        st.save(self.dir, cp)
        self.flushes += 1
        try:
            consumer.commit(
                {
                    TopicPartition(self.topic, p): OffsetAndMetadata(off, "", -1)
                    for p, off in offsets.items()
                }
            )
        except Exception as exc:  # the checkpoint is what counts; the group only shows lag
            log.warning("could not commit offsets to group %s: %s", self.group, exc)
