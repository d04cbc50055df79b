"""Prometheus counters from window aggregates: raw numerators and denominators only.

Each 1m window's values only grow while it fills (provisional revisions) until it is final,
so a counter advances by what grew since the window's last revision; once every window is
final, each counter equals the sum of the window's values (the results' 1m rows).
"""

from __future__ import annotations

import math

from prometheus_client import Counter

from ingest.metricdefs import MetricDef
from ingest.telemetry import counter
from processors import catalogue as m
from processors.core.resolve import Partial

Key = tuple[str, tuple[str, ...]]  # (metric name, label values without the namespace)


def window_counts(p: Partial) -> dict[Key, float]:
    """Every counter's value for one window, from its merged aggregates."""
    out: dict[Key, float] = {}

    def put(defn: MetricDef, labels: tuple[str, ...], value: float) -> None:
        if value:
            out[(defn.name, labels)] = value

    for bp, c in p.smm.items():
        authors = p.authors.get(bp, {})
        put(m.SMM_MENTIONS, bp, c.mentions)
        put(m.SMM_ENGAGEMENTS, bp, c.engagements)
        put(m.SMM_RESHARES, bp, c.reshares)
        put(m.SMM_AMPLIFIABLE_POSTS, bp, c.amplifiable)
        put(m.SMM_UNIQUE_AUTHORS, bp, len(authors) if c.mentions else 0)
        put(m.SMM_POTENTIAL_REACH, bp, sum(authors.values()))
    for (brand, platform, label), n in p.sentiment.items():
        put(m.SMM_MENTIONS_BY_SENTIMENT, (brand, platform, label), n)
    for (campaign, platform), n in p.campaigns.items():
        put(m.SMM_CAMPAIGN_MENTIONS, (campaign, platform), n)
    for site, n in p.pageviews.items():
        put(m.SMO_PAGEVIEWS, (site,), n)
    for defn, table in (
        (m.SMO_SOCIAL_REFERRALS, p.referrals),
        (m.SMO_SHARE_CLICKS, p.shares),
        (m.SMO_SOCIAL_CONVERSIONS, p.conversions),
        (m.SMO_CAMPAIGN_PAGEVIEWS, p.campaign_pageviews),
        (m.SMO_PAID_SOCIAL_REFERRALS, p.paid),
    ):
        for (site, other), n in table.items():
            put(defn, (site, other), n)
    for (site, net), values in p.conversion_values.items():
        put(m.SMO_SOCIAL_CONVERSION_VALUE, (site, net), math.fsum(values))
    return out


class WindowCounters:
    """Advances the SMM/SMO counters of one namespace from 1m window revisions."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._counters: dict[str, Counter] = {
            d.name: counter(d) for d in (*m.SMM_METRICS, *m.SMO_METRICS)
        }
        self._exported: dict[int, dict[Key, float]] = {}  # window start -> counted so far

    def advance(self, start: int, merged: Partial, final: bool) -> None:
        seen = self._exported.setdefault(start, {})
        for key, value in window_counts(merged).items():
            grew = value - seen.get(key, 0)
            if grew > 0:
                self._counters[key[0]].labels(self.namespace, *key[1]).inc(grew)
                seen[key] = value
        if final:
            self._exported.pop(start, None)
