"""Merge the partitions' partials into final window rows, and evaluate the stream alerts
(the logic the ``rollup`` agent, ``processors.job.rollup``, drives over Kafka).

A window is final once every partition's watermark marker has passed ``end + lateness``;
its partials are then merged and turned into rows (METRICS.md: which rows exist). Partial
and marker messages are idempotent (a re-sent partial replaces the same partition's
entry; markers only rise), so at-least-once delivery never double counts.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from processors.core import sentiment
from processors.core.resolve import TOP_RANKS, Partial, ranked
from processors.core.results import Row, row
from processors.core.stream_alerts import Rule, StreamAlerts, Transition
from processors.core.windows import SIZES

WINDOW_NAMES = {size: name for name, size in SIZES.items()}
MINUTE = 60
MAX_INT64 = 2**63 - 1


def window_rows(size: int, start: int, merged: Partial, brands: tuple[str, ...]) -> list[Row]:
    """Every row METRICS.md defines for one window, from the merged aggregates."""
    name = WINDOW_NAMES[size]
    end = start + size
    rows: list[Row] = []

    def add(metric: str, labels: dict[str, str], value: Any) -> None:
        rows.append(row(metric, name, start, end, labels, value))

    platform_total: dict[str, int] = defaultdict(int)
    for (b, p), c in sorted(merged.smm.items()):
        mentions, engagements, reshares, amp_posts = (
            c.mentions,
            c.engagements,
            c.reshares,
            c.amplifiable,
        )
        labels = {"brand": b, "platform": p}
        authors = merged.authors.get((b, p), {})
        # Python ints cannot overflow, but the results' JSON (and msgpack) stop at 64 bits:
        # ten million authors at the 10^12 bound would not fit, so the sum saturates.
        reach = min(sum(authors.values()), MAX_INT64)
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
                m = merged.smm[(b, p)].mentions if (b, p) in merged.smm else 0
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
            # Summed exactly (fsum): the same value whatever order the partitions merged in.
            values = merged.conversion_values.get((site, net), ())
            add("social_conversion_value", {"site": site, "network": net}, math.fsum(values))
    for (site, net), n in sorted(merged.paid.items()):
        if n:
            add("paid_social_referrals", {"site": site, "network": net}, n)
    rows += sentiment_rows(merged, add)
    if name == "1h":
        rows += top_rows(merged, add)
    return rows


def sentiment_rows(merged: Partial, add: Any) -> list[Row]:
    """mentions_by_sentiment per label, and net_sentiment where positive + negative > 0."""
    by_bp: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for (b, p, label), n in sorted(merged.sentiment.items()):
        if n:
            add("mentions_by_sentiment", {"brand": b, "platform": p, "sentiment": label}, n)
            by_bp[(b, p)][label] = n
    for (b, p), labels in sorted(by_bp.items()):
        pos, neg = labels.get(sentiment.POSITIVE, 0), labels.get(sentiment.NEGATIVE, 0)
        if pos + neg:
            add("net_sentiment", {"brand": b, "platform": p}, (pos - neg) / (pos + neg))
    return []


def top_rows(merged: Partial, add: Any) -> list[Row]:
    """The 1h top lists (METRICS.md r2): ten ranks each, ties by id or URL ascending."""
    for (b, p), counts in sorted(merged.top_posts.items()):
        for rank, (post, n) in enumerate(ranked(counts)[:TOP_RANKS], 1):
            add("top_posts", {"brand": b, "platform": p, "rank": str(rank), "post": post}, n)
    for (b, p), counts in sorted(merged.author_mentions.items()):
        followers = merged.authors.get((b, p), {})
        order = sorted(counts.items(), key=lambda kv: (-followers.get(kv[0], 0), -kv[1], kv[0]))
        for rank, (author, n) in enumerate(order[:TOP_RANKS], 1):
            labels = {"brand": b, "platform": p, "rank": str(rank), "author": author}
            add("top_authors", labels, n)
    for (b, p), counts in sorted(merged.links.items()):
        for rank, (link, n) in enumerate(ranked(counts)[:TOP_RANKS], 1):
            add("top_links", {"brand": b, "platform": p, "rank": str(rank), "link": link}, n)
    return []


class Rollup:
    def __init__(
        self,
        partitions: int,
        brands: tuple[str, ...],
        lateness: float,
        rules: tuple[Rule, ...] = (),
    ) -> None:
        self.partitions = partitions
        self.brands = brands
        self.lateness = lateness
        self.partials: dict[tuple[int, int], dict[int, Partial]] = defaultdict(dict)
        self.final_from: set[tuple[tuple[int, int], int]] = set()  # (window, partition) finals seen
        self.final_minutes: list[tuple[int, Partial]] = []  # 1m windows the last finalize() closed
        self.markers: dict[int, float] = {}
        self.max_ts = float("-inf")
        self.finalized_through = float("-inf")
        self.alerts = StreamAlerts(rules)

    def add_partial(
        self, partition: int, size: int, start: int, partial: Partial, final: bool = True
    ) -> bool:
        """Hold ``partial`` as the window's latest from ``partition`` (it replaces the one
        held); False when it is ignored."""
        if start + size + self.lateness <= self.finalized_through:
            return False  # already final; a re-sent partial after a restart changes nothing
        key = (size, start)
        if not final and (key, partition) in self.final_from:
            return False  # a late provisional revision (e.g. from a worker that lost the partition)
        self.partials[key][partition] = partial
        if final:
            self.final_from.add((key, partition))
        if partial.first_ts is not None:
            self.alerts.see_earliest(partial.first_ts)
        return True

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

    def finalize(self) -> tuple[list[Row], list[Transition]]:
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
                self.alerts.record_minute(start, merged)
                self.final_minutes.append((start, merged))
        self.finalized_through = frontier
        alerts: list[Transition] = []
        if self.alerts.earliest != float("inf") and self.max_ts != float("-inf"):
            last_reached = int(self.max_ts // MINUTE) * MINUTE
            limit = (
                last_reached
                if frontier == float("inf")
                else min(int(frontier - self.lateness), last_reached)
            )
            alerts = self.alerts.evaluate(limit)
        return rows, alerts


def alert_row(t: int, alertname: str, labels: dict[str, str], value: int) -> Row:
    """A stream alert transition as a results row (METRICS.md: ``"metric":"alert"``)."""
    return row("alert", "event", t, t, {"alertname": alertname, **labels}, value)
