"""A partition that silently stops is a dashboard that silently lies: detect it, recover.

Seen about once in fifteen failovers under load: a worker took a partition over, said its
recovery was complete, and was then handed no record of it for minutes (faust's fetcher
kept it paused, or its position lay where nothing came). faust reports nothing wrong, so
the worker watches for itself: a stage partition whose end offset is ahead of what its
agent applied, with no progress for ``stall_after`` seconds while no rebalance or
recovery runs, is stalled. The gauge ``ripple_processor_partition_stalled`` says so, the
log names it, and the watchdog resumes the partition and seeks it to the next offset the
agent expects (records below it are dropped as redeliveries, see ``processors.job.gapfill``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ingest.telemetry import gauge
from processors.catalogue import PROC_PARTITION_STALLED

log = logging.getLogger(__name__)


class PartitionWatchdog:
    def __init__(
        self,
        app: Any,
        namespace: str,
        topics: set[str],
        applied: dict[tuple[str, int], int],
        stall_after: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.namespace = namespace
        self.topics = topics
        self.applied = applied  # (topic, partition) -> next offset its agent expects
        self.stall_after = stall_after
        self.clock = clock
        self._since: dict[tuple[str, int], tuple[int, float]] = {}
        self._gauge = gauge(PROC_PARTITION_STALLED)
        self.recoveries = 0

    async def check(self) -> None:
        app = self.app
        now = self.clock()
        if getattr(app, "rebalancing", False) or getattr(app, "in_recovery", False):
            self._since.clear()  # only time with a stable assignment counts
            return
        consumer = app.consumer
        for tp in consumer.assignment():
            if tp.topic not in self.topics:
                continue
            key = (tp.topic, tp.partition)
            end = consumer.highwater(tp)
            at = self.applied.get(key)
            if at is None:
                at = consumer._committed_offset.get(tp) or 0  # type: ignore[attr-defined]  # no public getter
            if end is None or at >= end:
                self._since.pop(key, None)
                self._set(key, 0)
                continue
            seen = self._since.get(key)
            if seen is None or seen[0] != at:
                self._since[key] = (at, now)
                continue
            if now - seen[1] < self.stall_after:
                continue
            self._set(key, 1)
            log.warning(
                "partition %s[%d] stalled: %d records behind (next %d, end %d) with no progress "
                "for %.0f s; resuming it and seeking to %d",
                tp.topic, tp.partition, end - at, at, end, now - seen[1], at,
            )  # fmt: skip
            consumer.resume_partitions([tp])
            await consumer.seek(tp, at)
            self.recoveries += 1
            self._since[key] = (at, now)

    def _set(self, key: tuple[str, int], value: int) -> None:
        self._gauge.labels(self.namespace, key[0], str(key[1])).set(value)
