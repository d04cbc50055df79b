"""The gate's pure step: one ``<ns>.events`` record in, routed items out (no Kafka here).

Validation (EVENTS.md, bounds included), the one event-time watermark (the largest event
time seen), the per-size late flags and routing to the stateful stage's partitions. The
gate (``processors.job.gate``) runs it over each aiokafka batch; the in-process harness
(``processors.harness``) runs it over a file, so both compute the same items.
"""

from __future__ import annotations

import zlib
from typing import Any

from ingest.events import Event, InvalidEvent, decode_with_ts
from ingest.producer import partition_key
from processors.core.resolve import EXCLUDED, PRIMARY, REPLY_ENGAGEMENT
from processors.core.windows import LATE_BITS, late_flags

NEG_INF = float("-inf")
# (role, flags, event time, raw event, watermark at the event's stream position)
Item = list[Any]


def stage_partition(key: bytes, partitions: int) -> int:
    return zlib.crc32(key) % partitions


def routes(ev: Event, partitions: int) -> list[tuple[int, int]]:
    """(partition, role) pairs: the event's own key, plus its parent's for a reply."""
    out = [(stage_partition(partition_key(ev), partitions), PRIMARY)]
    reply_to = getattr(ev, "reply_to", None)
    if ev.kind == "post" and reply_to:  # type: ignore[attr-defined]
        out.append((stage_partition(reply_to.encode(), partitions), REPLY_ENGAGEMENT))
    return out


class GateStep:
    """Running state of one batch (or one whole replay): watermark, outputs, tallies."""

    def __init__(
        self,
        partitions: int,
        lateness: float,
        *,
        watermark: float = NEG_INF,
        max_ts: float = NEG_INF,
        max_event_bytes: int = 65536,
        max_future: float = 300.0,
        excluded: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        self.partitions = partitions
        self.lateness = lateness
        self.max_event_bytes = max_event_bytes
        self.max_future = max_future
        self.excluded = excluded
        self.wm = watermark
        self.max_ts = max_ts
        self.out: list[list[Item]] = [[] for _ in range(partitions)]
        self.dead: list[tuple[bytes, str, str]] = []
        self.counts: dict[tuple[str, str], int] = {}  # (platform, kind) -> accepted events
        self.late: dict[str, int] = {}  # window name -> late events
        self.newest: dict[str, float] = {}  # platform -> newest event time

    def add(self, raw: bytes) -> None:
        try:
            ev, ts = decode_with_ts(raw, self.max_event_bytes, self.max_future)
        except InvalidEvent as exc:
            self.dead.append((raw, exc.reason, exc.detail))
            return
        out = self.out
        author = getattr(ev, "author", None)
        if author is not None and self.excluded and (ev.platform, author.id) in self.excluded:
            # METRICS.md r2: an excluded author's event is as if it were not in the stream
            # (it moves no watermark); resolve remembers its id and counts it as filtered.
            for p, role in routes(ev, self.partitions):
                out[p].append([role, EXCLUDED, ts, raw, self.wm])
            return
        if ts > self.wm:
            self.wm = ts
        if ts > self.max_ts:
            self.max_ts = ts
        platform = ev.platform
        if ts > self.newest.get(platform, NEG_INF):
            self.newest[platform] = ts
        ck = (platform, ev.kind)  # type: ignore[attr-defined]
        self.counts[ck] = self.counts.get(ck, 0) + 1
        wm = self.wm
        flags = late_flags(ts, wm, self.lateness)
        if flags:
            for name, bit in LATE_BITS.items():
                if flags & bit:
                    self.late[name] = self.late.get(name, 0) + 1
        for p, role in routes(ev, self.partitions):
            out[p].append([role, flags, ts, raw, wm])
