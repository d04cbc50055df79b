"""Merge a topic's partitions by record timestamp while they are being consumed.

A consumer gets partitions in uneven chunks: one can be hours of event time ahead of
another. Records are held per partition and released, each partition in its own order,
by the smallest head timestamp first, and only up to the newest timestamp every partition
has reached (a partition at its end offset holds nothing back). So the output is the
merge a reader of the whole topic would make: event-time order, late records still late.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol


class Rec(Protocol):
    offset: int
    timestamp: int


class AlignedMerge:
    def __init__(self, partitions: Iterable[int]) -> None:
        self.queues: dict[int, deque[Any]] = {p: deque() for p in partitions}
        self.reached: dict[int, float] = {p: float("-inf") for p in self.queues}

    def add_partition(self, p: int) -> None:
        self.queues.setdefault(p, deque())
        self.reached.setdefault(p, float("-inf"))

    def add(self, p: int, recs: Iterable[Any]) -> None:
        q = self.queues[p]
        for r in recs:
            q.append(r)
            if r.timestamp > self.reached[p]:
                self.reached[p] = r.timestamp

    def held(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def bound(self, caught_up: set[int]) -> float:
        """Newest timestamp every partition has reached; those at their end do not count."""
        waiting = [self.reached[p] for p in self.queues if p not in caught_up]
        return min(waiting, default=float("inf"))

    def release(self, caught_up: set[int]) -> list[Any]:
        """Records that can go out now, in merged order."""
        limit = self.bound(caught_up)
        heads = [(q[0].timestamp, p) for p, q in self.queues.items() if q]
        heapq.heapify(heads)
        out = []
        while heads and heads[0][0] <= limit:
            _, p = heapq.heappop(heads)
            q = self.queues[p]
            out.append(q.popleft())
            if q:
                heapq.heappush(heads, (q[0].timestamp, p))
        return out

    def next_offsets(self, positions: dict[int, int]) -> dict[int, int]:
        """Per partition, the first offset not released yet (what a restart reads from)."""
        return {p: (q[0].offset if q else positions[p]) for p, q in self.queues.items()}

    def ahead(self, caught_up: set[int], hold: int) -> set[int]:
        """Partitions holding more than ``hold`` records beyond the bound: pause their fetching."""
        limit = self.bound(caught_up)
        return {p for p, q in self.queues.items() if len(q) > hold and self.reached[p] > limit}
