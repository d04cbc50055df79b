"""Merge the partitions' partials into final window rows, and evaluate EngagementDrop.

A window is final once every partition's watermark marker has passed ``end + lateness``;
its partials are then merged and turned into rows (METRICS.md: which rows exist). Partial
and marker messages are idempotent (a re-sent partial replaces the same partition's
entry; markers only rise), so at-least-once delivery never double counts.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from processors.partition_state import Partial
from processors.results import Row, row
from processors.windows import SIZES

WINDOW_NAMES = {size: name for name, size in SIZES.items()}
MINUTE = 60
DROP_WINDOW = 15 * MINUTE
TRAILING = 2 * 3600  # the trailing baseline covers [T-2h15m, T-15m)
WEEK = 7 * 86400


def window_rows(size: int, start: int, merged: Partial, brands: tuple[str, ...]) -> list[Row]:
    """Every row METRICS.md defines for one window, from the merged aggregates."""
    name = WINDOW_NAMES[size]
    end = start + size
    rows: list[Row] = []

    def add(metric: str, labels: dict[str, str], value: Any) -> None:
        rows.append(row(metric, name, start, end, labels, value))

    platform_total: dict[str, int] = defaultdict(int)
    for (b, p), (mentions, engagements, reshares, amp_posts) in sorted(merged.smm.items()):
        labels = {"brand": b, "platform": p}
        authors = merged.authors.get((b, p), {})
        reach = sum(authors.values())
        if b in brands:
            platform_total[p] += mentions
        if mentions:
            add("mentions", labels, mentions)
            add("unique_authors", labels, len(authors))
        if reach:
            add("potential_reach", labels, reach)
            add("engagement_rate", labels, engagements / reach)
        if engagements:
            add("engagements", labels, engagements)
        if amp_posts:
            add("amplification", labels, reshares / amp_posts)
    for p, total in sorted(platform_total.items()):
        if total:
            for b in brands:
                m = merged.smm[(b, p)][0] if (b, p) in merged.smm else 0
                add("share_of_voice", {"brand": b, "platform": p}, m / total)

    for site, pv in sorted(merged.pageviews.items()):
        if pv:
            add("pageviews", {"site": site}, pv)
            add("share_rate", {"site": site}, merged.share_total.get(site, 0) / pv)
    for (site, net), n in sorted(merged.referrals.items()):
        if n:
            add("social_referrals", {"site": site, "network": net}, n)
            conv = merged.conversions.get((site, net), 0)
            add("social_conversion_rate", {"site": site, "network": net}, conv / n)
    for (site, net), n in sorted(merged.shares.items()):
        if n:
            add("share_clicks", {"site": site, "network": net}, n)
            if name == "1h":
                ref = merged.referrals.get((site, net), 0)
                add("referral_yield", {"site": site, "network": net}, ref / n)
    for (site, net), n in sorted(merged.conversions.items()):
        if n:
            add("social_conversions", {"site": site, "network": net}, n)
    return rows


class DropDetector:
    """EngagementDrop on event time, evaluated at each minute boundary T (METRICS.md)."""

    def __init__(
        self, drop_ratio: float = 0.5, resolve_ratio: float = 0.8, floor: float = 20
    ) -> None:
        self.drop_ratio = drop_ratio
        self.resolve_ratio = resolve_ratio
        self.floor = floor
        self.engagements: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
        self.activity: dict[str, dict[int, int]] = defaultdict(dict)
        self.firing: set[tuple[str, str]] = set()
        self.next_t: int | None = None
        self.earliest = float("inf")  # earliest event time of the stream (kept across restarts)

    def snapshot(self) -> dict[str, Any]:
        horizon = (self.next_t or 0) - WEEK - 2 * DROP_WINDOW - TRAILING
        return {
            "engagements": [
                [b, p, [[m, n] for m, n in s.items() if m >= horizon]]
                for (b, p), s in self.engagements.items()
            ],
            "activity": [
                [p, [[m, n] for m, n in s.items() if m >= horizon]]
                for p, s in self.activity.items()
            ],
            "firing": sorted(self.firing),
            "next_t": self.next_t,
            "earliest": self.earliest,
        }

    def restore(self, snap: dict[str, Any]) -> None:
        for b, p, series in snap["engagements"]:
            self.engagements[(b, p)] = {m: n for m, n in series}
        for p, series in snap["activity"]:
            self.activity[p] = {m: n for m, n in series}
        self.firing = {(b, p) for b, p in snap["firing"]}
        self.next_t = snap["next_t"]
        self.earliest = snap.get("earliest", float("inf"))

    def record_minute(self, start: int, merged: Partial) -> None:
        for (b, p), v in merged.smm.items():
            if v[1]:
                self.engagements[(b, p)][start] = v[1]
        for p, n in merged.activity.items():
            if n:
                self.activity[p][start] = n

    @staticmethod
    def _sum(series: dict[int, int], lo: int, hi: int) -> int:
        return sum(series.get(m, 0) for m in range(lo, hi, MINUTE))

    def evaluate(self, frontier: int) -> list[tuple[int, str, str, int]]:
        """(T, brand, platform, 1 fire | 0 resolve) for every boundary T up to ``frontier``."""
        earliest = self.earliest
        out: list[tuple[int, str, str, int]] = []
        if self.next_t is None:
            self.next_t = (int(earliest) // MINUTE + 1) * MINUTE
        t = self.next_t
        while t <= frontier:
            for (b, p), series in sorted(self.engagements.items()):
                current = self._sum(series, t - DROP_WINDOW, t)
                week = t - WEEK
                if earliest <= week - DROP_WINDOW:
                    baseline = float(self._sum(series, week - DROP_WINDOW, week))
                elif earliest <= t - DROP_WINDOW - TRAILING:
                    baseline = self._sum(series, t - DROP_WINDOW - TRAILING, t - DROP_WINDOW) / 8
                else:
                    continue
                key = (b, p)
                if key not in self.firing:
                    stalled = self._sum(self.activity.get(p, {}), t - DROP_WINDOW, t) == 0
                    if (
                        baseline >= self.floor
                        and current < self.drop_ratio * baseline
                        and not stalled
                    ):
                        self.firing.add(key)
                        out.append((t, b, p, 1))
                elif (
                    baseline > 0
                    and current / baseline > self.resolve_ratio
                    or baseline == 0
                    and current > 0
                ):
                    self.firing.discard(key)
                    out.append((t, b, p, 0))
            t += MINUTE
        self.next_t = t
        return out


class Rollup:
    def __init__(self, partitions: int, brands: tuple[str, ...], lateness: float) -> None:
        self.partitions = partitions
        self.brands = brands
        self.lateness = lateness
        self.partials: dict[tuple[int, int], dict[int, Partial]] = defaultdict(dict)
        self.final_from: set[tuple[tuple[int, int], int]] = set()  # (window, partition) finals seen
        self.final_minutes: list[tuple[int, Partial]] = []  # 1m windows the last finalize() closed
        self.markers: dict[int, float] = {}
        self.max_ts = float("-inf")
        self.finalized_through = float("-inf")
        self.drops = DropDetector()

    def add_partial(
        self, partition: int, size: int, start: int, partial: Partial, final: bool = True
    ) -> None:
        if start + size + self.lateness <= self.finalized_through:
            return  # already final; a re-sent partial after a restart changes nothing
        key = (size, start)
        if not final and (key, partition) in self.final_from:
            return  # a late provisional revision (e.g. from a worker that lost the partition)
        self.partials[key][partition] = partial
        if final:
            self.final_from.add((key, partition))
        if partial.first_ts is not None:
            self.drops.earliest = min(self.drops.earliest, partial.first_ts)

    def current(self, size: int, start: int) -> Partial | None:
        """The merged partials of a window still open (for live revisions), or None."""
        parts = self.partials.get((size, start))
        if not parts:
            return None
        merged = Partial()
        for _, part in sorted(parts.items()):
            merged.merge(part)
        return merged

    def mark(self, partition: int, watermark: float, max_ts: float) -> None:
        if watermark > self.markers.get(partition, float("-inf")):
            self.markers[partition] = watermark
        self.max_ts = max(self.max_ts, max_ts)

    @property
    def frontier(self) -> float:
        if len(self.markers) < self.partitions:
            return float("-inf")
        return min(self.markers.values())

    @property
    def complete(self) -> bool:
        """Every partition flushed (end of a replay) and every window emitted."""
        return self.frontier == float("inf") and not self.partials

    def finalize(self) -> tuple[list[Row], list[tuple[int, str, str, int]]]:
        """Rows of the windows that became final, and stream alert transitions."""
        frontier = self.frontier
        if frontier == float("-inf"):
            return [], []
        rows: list[Row] = []
        self.final_minutes = []
        for key in sorted(self.partials):
            size, start = key
            if start + size + self.lateness > frontier:
                continue
            merged = Partial()
            for p, part in sorted(self.partials.pop(key).items()):
                merged.merge(part)
                self.final_from.discard((key, p))
            rows.extend(window_rows(size, start, merged, self.brands))
            if size == MINUTE:
                self.drops.record_minute(start, merged)
                self.final_minutes.append((start, merged))
        self.finalized_through = frontier
        alerts: list[tuple[int, str, str, int]] = []
        if self.drops.earliest != float("inf") and self.max_ts != float("-inf"):
            last_reached = int(self.max_ts // MINUTE) * MINUTE
            limit = (
                last_reached
                if frontier == float("inf")
                else min(int(frontier - self.lateness), last_reached)
            )
            alerts = self.drops.evaluate(limit)
        return rows, alerts


def alert_row(t: int, brand: str, platform: str, value: int) -> Row:
    r = row(
        "alert",
        "event",
        t,
        t,
        {"alertname": "EngagementDrop", "brand": brand, "platform": platform},
        value,
    )
    return r
