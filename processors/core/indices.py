"""A partition's two long-lived indices, kept small: ids seen (dedupe) and brand targets.

Both hold a day (dedupe) or a week (targets) of events, so their cost per entry is what
decides a worker's memory. Keys are 64-bit hashes of the ids (Python's SipHash: this state
lives in one process and is rebuilt from the item log, never shared), values are packed
into one int, and entries expire by the hour of their event time, a whole hour at a
time: pruning costs what expires, never a pass over what stays. About 80 bytes an entry,
against ~250 for the tuples and strings they replace.

A 64-bit collision would drop one event as a duplicate: for 10 million ids a day the
chance is about 3 in a million a day, accepted (the README says so).
"""

from __future__ import annotations

import struct
from collections import defaultdict
from typing import Protocol

HOUR = 3600
_DOUBLE = struct.Struct("<d")


def id_key(role: int, event_id: str) -> int:
    return (hash(event_id) << 1) | role


class Seen(Protocol):
    """Ids seen (de-duplication): ``add`` tells whether ``(role, id)`` is new."""

    def add(self, role: int, event_id: str, ts: float) -> bool: ...

    def expire_before(self, ts: float) -> None: ...


class Targets(Protocol):
    """Brand posts by id: their event time and the brands they mention or belong to."""

    def add(self, post_id: str, ts: float, brands: frozenset[str]) -> None: ...

    def get(self, post_id: str) -> tuple[float, frozenset[str]] | None: ...

    def expire_before(self, ts: float) -> None: ...


class SeenIds:
    """Ids seen, by the hour of their event time, in memory (the harness, tests)."""

    def __init__(self) -> None:
        self._hour_of: dict[int, int] = {}
        self._by_hour: dict[int, list[int]] = defaultdict(list)
        self._hours: dict[int, int] = {}  # one int object per hour, shared by its entries

    def __len__(self) -> int:
        return len(self._hour_of)

    def add(self, role: int, event_id: str, ts: float) -> bool:
        key = id_key(role, event_id)
        if key in self._hour_of:
            return False
        h = int(ts // HOUR)
        hour = self._hours.setdefault(h, h)
        self._hour_of[key] = hour
        self._by_hour[hour].append(key)
        return True

    def expire_before(self, ts: float) -> None:
        """Forget every id of an hour that ended before ``ts``."""
        for h in [h for h in self._by_hour if (h + 1) * HOUR <= ts]:
            for key in self._by_hour.pop(h):
                if self._hour_of.get(key) == h:
                    del self._hour_of[key]
            self._hours.pop(h, None)


class TargetIndex:
    """Posts that mention a brand or were written by one, in memory (the harness, tests).

    A post with no brand at all is not kept: looking it up would add nothing to what the
    engagement's own ``target_author_id`` says."""

    def __init__(self) -> None:
        self._entries: dict[int, int] = {}  # id hash -> (float bits << 16) | brand set index
        self._by_hour: dict[int, list[int]] = defaultdict(list)
        self._sets: list[frozenset[str]] = []
        self._set_ids: dict[frozenset[str], int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, post_id: str, ts: float, brands: frozenset[str]) -> None:
        if not brands:
            return
        idx = self._set_ids.get(brands)
        if idx is None:
            idx = self._set_ids[brands] = len(self._sets)
            self._sets.append(brands)
        key = hash(post_id)
        bits = int.from_bytes(_DOUBLE.pack(ts), "little")
        self._entries[key] = (bits << 16) | idx
        self._by_hour[int(ts // HOUR)].append(key)

    def get(self, post_id: str) -> tuple[float, frozenset[str]] | None:
        packed = self._entries.get(hash(post_id))
        if packed is None:
            return None
        ts = _DOUBLE.unpack((packed >> 16).to_bytes(8, "little"))[0]
        return ts, self._sets[packed & 0xFFFF]

    def expire_before(self, ts: float) -> None:
        for h in [h for h in self._by_hour if (h + 1) * HOUR <= ts]:
            for key in self._by_hour.pop(h):
                packed = self._entries.get(key)
                if packed is not None:
                    t = _DOUBLE.unpack((packed >> 16).to_bytes(8, "little"))[0]
                    if int(t // HOUR) == h:
                        del self._entries[key]
