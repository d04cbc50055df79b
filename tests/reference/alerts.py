"""METRICS.md "Spikes and drops" (r2): one rule shape, four alerts, evaluated in event time.

Series are the final 1m counts of a metric per label set. At each minute boundary T (from
the first T whose history reaches back to T-2h15m, to the last minute the stream reached),
x is the count in [T-15m, T) and B the baseline. Arithmetic is exact (fractions): B is a
mean of integers and the factors are the decimal numbers of the configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from ingest.config import Config

from .bounds import MINUTE, iso

QUARTER = 15 * MINUTE
WEEK = 7 * 24 * 60 * MINUTE
HISTORY = 9 * QUARTER  # the mean baseline needs [T-2h15m, T-15m)
STALL_SPAN = 5 * MINUTE  # stalled at T: no counted event of the platform in [T-5m, T)
HOLD_SPAN = 15 * MINUTE  # a drop is held back when stalled at any boundary in (T-15m, T]

Labels = tuple[tuple[str, str], ...]
Row = dict[str, object]


@dataclass(frozen=True)
class AlertDef:
    name: str
    metric: str  # the series: a 1m metric of the results
    drop: bool  # drop (x < factor B, B >= floor) or spike (x >= factor B, x >= floor)
    web: bool = False  # the platform of a series: `web`, or its `platform` label


ALERTS = (
    AlertDef("EngagementDrop", "engagements", drop=True),
    AlertDef("MentionSpike", "mentions", drop=False),
    AlertDef("NegativeSentimentSpike", "negative_mentions", drop=False),
    AlertDef("SocialReferralDrop", "social_referrals", drop=True, web=True),
)


def _exact(x: float) -> Fraction:
    """A configured factor as the decimal number it was written as (0.8 is 4/5)."""
    return Fraction(repr(float(x)))


def evaluate(
    alert: AlertDef,
    rule: tuple[float, float, float],
    series: dict[Labels, dict[int, int]],
    active: dict[str, set[int]],
    first_ts: int,
    last_ts: int,
) -> list[Row]:
    """Fire (1) and resolve (0) rows of one alert for every label set of its series.

    ``series[labels][minute start]`` are the final 1m counts; ``active[platform]`` the
    minutes holding any counted event of that platform.
    """
    factor, floor, resolve = (_exact(v) for v in rule)
    first_t = -(-(first_ts + HISTORY) // MINUTE) * MINUTE
    last_t = last_ts - last_ts % MINUTE
    rows: list[Row] = []
    for labels, per_minute in sorted(series.items()):
        if not any(per_minute.values()):
            continue
        platform = "web" if alert.web else dict(labels)["platform"]
        stalled = _stalled(active.get(platform, set()))

        def total(lo: int, hi: int, counts: dict[int, int] = per_minute) -> int:
            return sum(v for m, v in counts.items() if lo <= m < hi)

        firing = False
        for t in _boundaries(per_minute, first_t, last_t):
            x = total(t - QUARTER, t)
            if first_ts <= t - WEEK - QUARTER:  # the stream holds the same quarter a week ago
                b = Fraction(total(t - WEEK - QUARTER, t - WEEK))
            else:
                b = Fraction(total(t - HISTORY, t - QUARTER), 8)
            if not firing:
                if alert.drop:
                    fire = b >= floor and x < factor * b and not _held_back(stalled, t)
                else:
                    fire = x >= factor * b and x >= floor  # spikes are never held back
                if not fire:
                    continue
                firing, value = True, 1
            else:
                end = (b > 0 and x > resolve * b) if alert.drop else x < resolve * b
                if not end:
                    continue
                firing, value = False, 0
            rows.append(
                {"metric": "alert", "window": "event", "window_start": iso(t), "window_end": iso(t),
                 "labels": {"alertname": alert.name, **dict(labels)}, "value": value}
            )  # fmt: skip
    return rows


def _boundaries(per_minute: dict[int, int], first_t: int, last_t: int) -> list[int]:
    """The boundaries T in [first_t, last_t] where x or B can be non-zero: within a week and
    a quarter after a minute with a count. Elsewhere x = B = 0 and nothing changes (with
    positive floors), which spares the years of minutes a far-future event would add."""
    spans: list[tuple[int, int]] = []
    for m in sorted(k for k, v in per_minute.items() if v):
        lo, hi = max(first_t, m + MINUTE), min(last_t, m + MINUTE + WEEK + QUARTER)
        if spans and lo <= spans[-1][1] + MINUTE:
            spans[-1] = (spans[-1][0], max(spans[-1][1], hi))
        elif lo <= hi:
            spans.append((lo, hi))
    return [t for lo, hi in spans for t in range(lo, hi + 1, MINUTE)]


def _stalled(minutes: set[int]) -> Callable[[int], bool]:
    def stalled(t: int) -> bool:
        return not any(m in minutes for m in range(t - STALL_SPAN, t, MINUTE))

    return stalled


def _held_back(stalled: Callable[[int], bool], t: int) -> bool:
    return any(stalled(s) for s in range(t - HOLD_SPAN + MINUTE, t + MINUTE, MINUTE))


def all_alerts(
    config: Config,
    series: dict[str, dict[Labels, dict[int, int]]],
    active: dict[str, set[int]],
    first_ts: int,
    last_ts: int,
) -> list[Row]:
    rows: list[Row] = []
    for alert in ALERTS:
        rule = config.alert_rule(alert.name)
        rows += evaluate(alert, rule, series.get(alert.metric, {}), active, first_ts, last_ts)
    return rows
