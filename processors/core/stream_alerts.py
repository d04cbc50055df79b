"""The stream side of METRICS.md's "Spikes and drops": every alert of the catalogue
(``processors.catalogue.ALERTS``) on event time, from final 1m windows.

At each minute boundary T, x is the series' count in [T-15m, T) and the baseline B the
count of the same 15 minutes a week earlier (once the stream reaches back that far), else
the mean per 15 minutes over [T-2h15m, T-15m) (once it reaches back to T-2h15m). Drops
fire below ``factor``·B (with B at least ``floor``) unless ingestion of the platform
stalled in (T-15m, T], and resolve above ``resolve``·B (only where B > 0); spikes fire at
``factor``·B or more (with x at least ``floor``) and resolve below ``resolve``·B.

Bounded by data, not by time: x, B and the stall test only change at boundaries a fixed
distance after a minute that holds data (or after the stream's earliest event), so only
those boundaries are evaluated. Between two of them nothing changes, and because a fire
and a resolve condition never hold at once for sane factors (and the next minute is
evaluated after every transition in case they do), the result equals evaluating every
minute; a watermark that jumps by centuries costs what a jump by a minute costs.
Comparisons are exact (rationals): the factors are decimals from the configuration.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from ingest.config import Config
from processors.catalogue import ALERTS, AlertDef
from processors.core.resolve import Partial

MINUTE = 60
QUARTER = 15 * MINUTE  # the series window [T-15m, T)
TRAILING = 2 * 3600  # the trailing baseline covers [T-2h15m, T-15m): 8 quarters
WEEK = 7 * 86400
STALL = 5 * MINUTE  # a platform with no counted event in [T-5m, T) is stalled at T

Key = tuple[str, str]  # the alert's two label values, e.g. (brand, platform)
Transition = tuple[int, str, dict[str, str], int]  # (T, alertname, labels, 1 fire | 0 resolve)

# Boundaries after a data minute m at which x, B or the stall test can change (see above).
_SERIES_OFFSETS = (
    MINUTE, QUARTER + MINUTE,  # x
    TRAILING + QUARTER + MINUTE,  # trailing baseline (it enters where x leaves)
    WEEK + MINUTE, WEEK + QUARTER + MINUTE,  # weekly baseline
)  # fmt: skip
_STALL_CHANGES = (MINUTE, STALL + MINUTE)  # stalled(T) changes here after activity at m
_HELD_SPAN = (0, QUARTER - MINUTE, QUARTER)  # held(T) changes here after stalled(T) does

Extract = Callable[[Partial], dict[Key, int]]


def _smm(count: str) -> Extract:
    """One of ``SmmCounts``' counts, per (brand, platform) where it is not zero."""
    return lambda p: {k: n for k, v in p.smm.items() if (n := getattr(v, count))}


# How each alert's series is read from a merged 1m partial (the catalogue names it).
SERIES: dict[str, Extract] = {
    "engagements": _smm("engagements"),
    "mentions": _smm("mentions"),
    "mentions_by_sentiment": lambda p: {
        (b, pl): n for (b, pl, label), n in p.sentiment.items() if label == "negative" and n
    },
    "social_referrals": lambda p: {k: n for k, n in p.referrals.items() if n},
}


class Rule:
    """One alert with its configured factor, floor and resolve factor (exact)."""

    def __init__(self, alert: AlertDef, factor: float, floor: float, resolve: float) -> None:
        self.alert = alert
        self.factor = Fraction(str(factor))
        self.floor = Fraction(str(floor))
        self.resolve = Fraction(str(resolve))

    def fires(self, x: int, b: Fraction, held: bool) -> bool:
        if self.alert.kind == "drop":
            return not held and b >= self.floor and x < self.factor * b
        return x >= self.factor * b and x >= self.floor

    def resolves(self, x: int, b: Fraction) -> bool:
        if self.alert.kind == "drop":
            return b > 0 and x > self.resolve * b
        return x < self.resolve * b


def rules_of(config: Config) -> tuple[Rule, ...]:
    return tuple(Rule(a, *config.alert_rule(a.name)) for a in ALERTS)


class StreamAlerts:
    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        self.series: dict[str, dict[Key, dict[int, int]]] = {
            r.alert.name: defaultdict(dict) for r in rules
        }
        self.activity: dict[str, dict[int, int]] = defaultdict(dict)  # platform -> minute -> n
        self.firing: set[tuple[str, Key]] = set()
        self.next_t: int | None = None  # every boundary before it is evaluated
        self.earliest = float("inf")  # earliest event time of the stream (kept across restarts)
        self._candidates: list[int] = []  # boundaries where something may change (a heap)
        self._queued: set[int] = set()
        self._pruned_at = -(2**62)

    # -- state ---------------------------------------------------------------------------
    def _horizon(self) -> int:
        return (self.next_t or 0) - WEEK - QUARTER - MINUTE

    def snapshot(self) -> dict[str, Any]:
        horizon = self._horizon()
        return {
            "series": [
                [name, k[0], k[1], [[m, n] for m, n in s.items() if m >= horizon]]
                for name, keys in self.series.items()
                for k, s in keys.items()
            ],
            "activity": [
                [p, [[m, n] for m, n in s.items() if m >= horizon]]
                for p, s in self.activity.items()
            ],
            "firing": sorted([name, *k] for name, k in self.firing),
            "next_t": self.next_t,
            "earliest": self.earliest,
        }

    def restore(self, snap: dict[str, Any]) -> None:
        for name, a, b, points in snap["series"]:
            if name in self.series:
                self.series[name][(a, b)] = {m: n for m, n in points}
        for p, points in snap["activity"]:
            self.activity[p] = {m: n for m, n in points}
        self.firing = {(name, (a, b)) for name, a, b in snap["firing"]}
        self.next_t = snap["next_t"]
        self.earliest = snap["earliest"]
        for keys in self.series.values():
            for s in keys.values():
                self._queue_after(s, _SERIES_OFFSETS)
        for s in self.activity.values():
            self._queue_stall(s)
        self._queue_history()

    # -- input ---------------------------------------------------------------------------
    def see_earliest(self, ts: float) -> None:
        if ts < self.earliest:
            self.earliest = ts
            self._queue_history()

    def record_minute(self, start: int, merged: Partial) -> None:
        """A final 1m window: its counts join every alert's series."""
        for r in self.rules:
            name = r.alert.name
            for key, n in SERIES[r.alert.series](merged).items():
                self.series[name][key][start] = n
                self._queue(start + d for d in _SERIES_OFFSETS)
        for platform, n in merged.activity.items():
            if n:
                self.activity[platform][start] = n
                self._queue(start + c + h for c in _STALL_CHANGES for h in _HELD_SPAN)

    def _queue(self, ts: Any) -> None:
        floor = self.next_t if self.next_t is not None else -(2**62)
        for t in ts:
            if t >= floor and t not in self._queued:
                self._queued.add(t)
                heapq.heappush(self._candidates, t)

    def _queue_after(self, s: dict[int, int], offsets: tuple[int, ...]) -> None:
        self._queue(m + d for m in s for d in offsets)

    def _queue_stall(self, s: dict[int, int]) -> None:
        self._queue(m + c + h for m in s for c in _STALL_CHANGES for h in _HELD_SPAN)

    def _queue_history(self) -> None:
        if self.earliest == float("inf"):
            return
        first = (int(self.earliest) // MINUTE + 1) * MINUTE
        self._queue(
            [first]
            + [_ceil_minute(self.earliest + d) for d in (TRAILING + QUARTER, WEEK + QUARTER)]
        )

    # -- evaluation ----------------------------------------------------------------------
    @staticmethod
    def _sum(s: dict[int, int], lo: int, hi: int) -> int:
        # 15 (or 120) lookups: the span is fixed, never the distance between boundaries.
        return sum(s.get(m, 0) for m in range(lo, hi, MINUTE))

    def _stalled(self, platform: str, t: int) -> bool:
        return self._sum(self.activity.get(platform, {}), t - STALL, t) == 0

    def _held(self, platform: str, t: int) -> bool:
        return any(self._stalled(platform, u) for u in range(t - QUARTER + MINUTE, t + 1, MINUTE))

    def _baseline(self, s: dict[int, int], t: int) -> Fraction | None:
        week = t - WEEK
        if self.earliest <= week - QUARTER:
            return Fraction(self._sum(s, week - QUARTER, week))
        if self.earliest <= t - QUARTER - TRAILING:
            return Fraction(self._sum(s, t - QUARTER - TRAILING, t - QUARTER), 8)
        return None

    def evaluate(self, limit: int) -> list[Transition]:
        """Transitions at every boundary T <= ``limit`` not evaluated yet, in order."""
        if self.earliest == float("inf"):
            return []
        if self.next_t is None:
            self.next_t = (int(self.earliest) // MINUTE + 1) * MINUTE
        out: list[Transition] = []
        while self._candidates and self._candidates[0] <= limit:
            t = heapq.heappop(self._candidates)
            self._queued.discard(t)
            if t < self.next_t:
                continue
            changed = self._evaluate_at(t, out)
            self.next_t = t + MINUTE
            if changed:
                self._queue([t + MINUTE])  # in case fire and resolve conditions overlap
        if limit >= self.next_t:
            self.next_t = limit + MINUTE
        self._prune()
        return out

    def _evaluate_at(self, t: int, out: list[Transition]) -> bool:
        changed = False
        for r in self.rules:
            a = r.alert
            for key, s in sorted(self.series[a.name].items()):
                b = self._baseline(s, t)
                if b is None:
                    continue
                x = self._sum(s, t - QUARTER, t)
                fkey = (a.name, key)
                if fkey not in self.firing:
                    platform = a.stall_platform or key[1]
                    held = a.kind == "drop" and self._held(platform, t)
                    if r.fires(x, b, held):
                        self.firing.add(fkey)
                        out.append((t, a.name, dict(zip(a.labels, key, strict=True)), 1))
                        changed = True
                elif r.resolves(x, b):
                    self.firing.discard(fkey)
                    out.append((t, a.name, dict(zip(a.labels, key, strict=True)), 0))
                    changed = True
        return changed

    def _prune(self) -> None:
        """Forget minutes no baseline can reach any more (memory stays a week of data)."""
        horizon = self._horizon()
        if horizon - self._pruned_at < 3600:
            return  # once per hour of event time: the pass is linear in what is kept
        self._pruned_at = horizon
        for keys in self.series.values():
            for key in list(keys):
                s = keys[key]
                if s and min(s) < horizon:
                    keys[key] = s = {m: n for m, n in s.items() if m >= horizon}
                if not s and all(f[1] != key for f in self.firing):
                    del keys[key]
        for p in list(self.activity):
            s = self.activity[p]
            if s and min(s) < horizon:
                self.activity[p] = {m: n for m, n in s.items() if m >= horizon}


def _ceil_minute(t: float) -> int:
    m = int(t // MINUTE) * MINUTE
    return m if m == t else m + MINUTE
