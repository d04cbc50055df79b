"""Prometheus recording rules, generated from the metric catalogue.

Names follow ``level:metric:operations``; the level lists the labels kept besides
``namespace``, which every processor rule keeps so that the live pipeline and each replay stay
apart (a rule with no other label has the level ``namespace``). Ingest metrics have no
namespace label and keep only theirs.

Ratios are divisions of sums of raw counter rates (``sum(rate(a)) / sum(rate(b))``), never
averages of ratios, and are not emitted where the denominator is 0 (METRICS.md).

The drop detectors (METRICS.md "Engagement drops") are recorded too, so that alerts and
dashboards read the same three series per label set: ``…:increase15m`` (the last 15 minutes),
``…:baseline15m`` and ``…:ratio_baseline15m`` (their quotient).
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboards.config import CONFIG, Config
from dashboards.promql import (
    NS,
    base_name,
    by,
    const_label,
    copy_label,
    duration,
    keys,
    record_name,
    seconds,
    selector_body,
)
from ingest.metricdefs import (
    INGEST_DEAD_LETTERS,
    INGEST_LAST_EVENT,
    INGEST_METRICS,
    MetricDef,
)
from processors.catalogue import (
    ALERTS,
    PIPELINE_METRICS,
    PROC_CONSUMER_LAG,
    PROC_EVENTS,
    PROC_LAST_EVENT,
    PROC_WATERMARK,
    SMM_AMPLIFIABLE_POSTS,
    SMM_ENGAGEMENTS,
    SMM_MENTIONS,
    SMM_MENTIONS_BY_SENTIMENT,
    SMM_METRICS,
    SMM_POTENTIAL_REACH,
    SMM_RESHARES,
    SMO_METRICS,
    SMO_PAGEVIEWS,
    SMO_PAID_SOCIAL_REFERRALS,
    SMO_SHARE_CLICKS,
    SMO_SOCIAL_CONVERSION_VALUE,
    SMO_SOCIAL_CONVERSIONS,
    SMO_SOCIAL_REFERRALS,
    AlertDef,
)


@dataclass(frozen=True)
class Recording:
    record: str
    expr: str

    def to_dict(self) -> dict[str, object]:
        return {"record": self.record, "expr": self.expr}


@dataclass(frozen=True)
class Group:
    name: str
    rules: tuple[object, ...]  # Recording or alerts.Alert; both have to_dict()

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "rules": [r.to_dict() for r in self.rules]}  # type: ignore[attr-defined]


# --- names shared with the alerts and the dashboards ---------------------------------------


def rate_name(metric: MetricDef, labels: tuple[str, ...], window: str) -> str:
    return record_name(keys(metric, labels), base_name(metric), f"rate{window}")


def rate_rule(metric: MetricDef, labels: tuple[str, ...], window: str) -> Recording:
    if metric.type != "counter":
        raise ValueError(f"{metric.name} is a {metric.type}, not a counter")
    k = keys(metric, labels)
    return Recording(
        rate_name(metric, labels, window), f"sum by ({by(k)}) (rate({metric.name}[{window}]))"
    )


def own_labels(metric: MetricDef) -> tuple[str, ...]:
    return tuple(lbl for lbl in metric.labels if lbl != NS)


@dataclass(frozen=True)
class Ratio:
    """``name = numerator / denominator`` from recorded sums of rates (METRICS.md ratios)."""

    name: str  # metric part of the record name, e.g. ripple_smm_engagement_rate
    numerator: MetricDef
    denominator: MetricDef
    labels: tuple[str, ...]
    denominator_labels: tuple[str, ...] | None = None  # coarser, e.g. share of voice
    slow: bool = False  # over the slow window (METRICS.md's 1h-only ratios)

    def window(self, cfg: Config = CONFIG) -> str:
        return cfg.slow_window if self.slow else cfg.rate_window

    def record(self, cfg: Config = CONFIG) -> str:
        return record_name(
            keys(self.numerator, self.labels), self.name, f"ratio_rate{self.window(cfg)}"
        )

    def rule(self, cfg: Config = CONFIG) -> Recording:
        w = self.window(cfg)
        num = rate_name(self.numerator, self.labels, w)
        den_labels = self.labels if self.denominator_labels is None else self.denominator_labels
        den = rate_name(self.denominator, den_labels, w)
        if den_labels == self.labels:
            expr = f"{num} / ({den} > 0)"
        else:
            k = keys(self.denominator, den_labels)
            expr = f"{num} / on ({by(k)}) group_left () ({den} > 0)"
        return Recording(self.record(cfg), expr)

    def rates(self) -> tuple[tuple[MetricDef, tuple[str, ...]], ...]:
        den_labels = self.labels if self.denominator_labels is None else self.denominator_labels
        return ((self.numerator, self.labels), (self.denominator, den_labels))


BP = ("brand", "platform")
SN = ("site", "network")
RATIOS = (
    Ratio("ripple_smm_engagement_rate", SMM_ENGAGEMENTS, SMM_POTENTIAL_REACH, BP),
    Ratio("ripple_smm_amplification", SMM_RESHARES, SMM_AMPLIFIABLE_POSTS, BP),
    Ratio("ripple_smm_share_of_voice", SMM_MENTIONS, SMM_MENTIONS, BP, ("platform",)),
    Ratio("ripple_smo_share_rate", SMO_SHARE_CLICKS, SMO_PAGEVIEWS, ("site",)),
    Ratio("ripple_smo_referral_yield", SMO_SOCIAL_REFERRALS, SMO_SHARE_CLICKS, SN, slow=True),
    Ratio(
        "ripple_smo_social_conversion_rate", SMO_SOCIAL_CONVERSIONS, SMO_SOCIAL_REFERRALS, SN,
        slow=True,
    ),
    # METRICS.md r2 "SMO depth": the paid part of social referrals, value per conversion.
    Ratio("ripple_smo_paid_social_share", SMO_PAID_SOCIAL_REFERRALS, SMO_SOCIAL_REFERRALS, SN),
    Ratio(
        "ripple_smo_social_conversion_value_per_conversion", SMO_SOCIAL_CONVERSION_VALUE,
        SMO_SOCIAL_CONVERSIONS, SN, slow=True,
    ),
)  # fmt: skip

# METRICS.md r2 net_sentiment = (positive - negative) / (positive + negative), from the raw
# per-sentiment counter (not emitted where that sum is 0).
NET_SENTIMENT = record_name(
    keys(SMM_MENTIONS_BY_SENTIMENT, BP), "ripple_smm_net_sentiment", "ratio_rate"
)


def net_sentiment_rule(cfg: Config = CONFIG) -> Recording:
    k = by(keys(SMM_MENTIONS_BY_SENTIMENT, BP))
    rate = rate_name(
        SMM_MENTIONS_BY_SENTIMENT, own_labels(SMM_MENTIONS_BY_SENTIMENT), cfg.rate_window
    )

    def one(label: str) -> str:
        return f'sum by ({k}) ({rate}{{sentiment="{label}"}})'

    pos, neg = one("positive"), one("negative")
    # A brand with positive but no negative posts (or the reverse) still has a ratio.
    p, n = f"({pos} or 0 * {neg})", f"({neg} or 0 * {pos})"
    return Recording(f"{NET_SENTIMENT}{cfg.rate_window}", f"({p} - {n})\n/\n(({p} + {n}) > 0)")


@dataclass(frozen=True)
class Detector:
    """The recorded series of one alert of the rule table (METRICS.md "Spikes and drops"):
    ``…:increase15m`` (x, the last 15 minutes), ``…:baseline15m`` (B) and
    ``…:ratio_baseline15m`` (x / B where B > 0), per namespace and the alert's labels."""

    alert: AlertDef

    @property
    def name(self) -> str:
        return self.alert.name

    @property
    def metric(self) -> MetricDef:
        return self.alert.counter

    @property
    def labels(self) -> tuple[str, ...]:
        return self.alert.labels

    @property
    def series_name(self) -> str:
        # NegativeSentimentSpike reads one sentiment: ripple_smm_mentions_by_sentiment_negative.
        return "_".join([base_name(self.metric), *(v for _, v in self.alert.match)])

    def _name(self, operation: str) -> str:
        return record_name(keys(self.metric, self.labels), self.series_name, operation)

    def current(self, cfg: Config = CONFIG) -> str:
        return self._name(f"increase{cfg.baseline.window}")

    def baseline(self, cfg: Config = CONFIG) -> str:
        return self._name(f"baseline{cfg.baseline.window}")

    def ratio(self, cfg: Config = CONFIG) -> str:
        return self._name(f"ratio_baseline{cfg.baseline.window}")

    def keys(self) -> tuple[str, ...]:
        return keys(self.metric, self.labels)

    def selector(self) -> str:
        return f"{self.metric.name}{selector_body(dict(self.alert.match))}"


DETECTORS = tuple(Detector(a) for a in ALERTS)


def detector(name: str) -> Detector:
    return next(d for d in DETECTORS if d.name == name)


def history_since(offset: str) -> str:
    """Namespaces whose stream already existed ``offset`` ago (the watermark was exported)."""
    return f"count by ({NS}) ({PROC_WATERMARK.name} offset {offset})"


def detector_rules(det: Detector, cfg: Config = CONFIG) -> tuple[Recording, ...]:
    d = cfg.baseline
    k = by(det.keys())
    window = seconds(d.window)
    seasonal_start = duration(seconds(d.seasonal_offset) + window)
    trailing_start = duration(seconds(d.trailing_range) + window)
    name = det.selector()
    current = Recording(det.current(cfg), f"sum by ({k}) (increase({name}[{d.window}]))")
    # Same window a week earlier when the stream reaches back that far; otherwise the mean per
    # window over the trailing range before it, once the stream reaches back to its start.
    seasonal = (
        f"sum by ({k}) (increase({name}[{d.window}] offset {d.seasonal_offset}))"
        f" and on ({NS}) {history_since(seasonal_start)}"
    )
    trailing = (
        f"sum by ({k}) (increase({name}[{d.trailing_range}] offset {d.window})) / {d.trailing_periods}"
        f" and on ({NS}) {history_since(trailing_start)}"
        f" unless on ({NS}) {history_since(seasonal_start)}"
    )
    baseline = Recording(det.baseline(cfg), f"(\n  {seasonal}\n)\nor\n(\n  {trailing}\n)")
    # A label set with a baseline but no recent series (a restarted worker has not seen it
    # yet) counts 0, as long as its namespace's worker reports at all.
    ratio = Recording(
        det.ratio(cfg),
        f"({current.record} or (0 * {baseline.record} and on ({NS}) count by ({NS}) ({PROC_WATERMARK.name})))"
        f" / ({baseline.record} > 0)",
    )
    return (current, baseline, ratio)


# --- freshness and stalls ------------------------------------------------------------------

PROC_AGE = record_name(keys(PROC_LAST_EVENT, ("source",)), PROC_LAST_EVENT.name, "age")
INGEST_AGE = record_name(keys(INGEST_LAST_EVENT, ("source",)), INGEST_LAST_EVENT.name, "age")
WATERMARK_AGE = record_name(keys(PROC_WATERMARK, ()), PROC_WATERMARK.name, "age")
# Age of each source's newest event, live pipeline only, labelled stage (ingest: what the
# ingestor produced; processor: what the live workers saw) and platform (= source, to join the
# SMM series). A gauge that vanished (restarted worker, dead ingestor) keeps its last age;
# an expected source that never reported is +Inf.
NEWEST_AGE = "source_stage:ripple_newest_event:age"
# The same, only where the age is past the source's stall threshold: IngestStalled.
STALLED = "source_stage:ripple_newest_event:stalled"


def stall_rules(cfg: Config = CONFIG) -> tuple[Recording, ...]:
    live = {NS: cfg.live_namespace}
    s = cfg.stall
    proc_k = by(keys(PROC_LAST_EVENT, ("source",)))
    # Event-time staleness: how far a source's newest event is behind the stream's newest
    # (the watermark). A paced replay (the demo plays four hours at 160x) is hours behind the
    # clock and yet no source of it is stale; live, while events flow, it equals the clock's
    # staleness. When nothing moves at all the watermark stops too, so once it has been still
    # for idle_after the age is the clock's again (a total stop is still a stall).
    wm = f"max by ({NS}) ({PROC_WATERMARK.name})"
    moving = f"max by ({NS}) (changes({PROC_WATERMARK.name}[{s.idle_after}])) > 0"
    proc_age = Recording(
        PROC_AGE,
        f"(\n  {wm} - on ({NS}) group_right () max by ({proc_k}) ({PROC_LAST_EVENT.name})"
        f"\n  and on ({NS}) ({moving})\n)"
        f"\nor\ntime() - max by ({proc_k}) ({PROC_LAST_EVENT.name})",
    )
    ingest_age = Recording(INGEST_AGE, f"time() - max by (source) ({INGEST_LAST_EVENT.name})")
    watermark_age = Recording(WATERMARK_AGE, f"time() - max by ({NS}) ({PROC_WATERMARK.name})")
    # Only the live namespace: a replay's event times are history, their age means nothing.
    live_sel = selector_body(live)
    processor = [
        f"{PROC_AGE}{live_sel}",
        f"time() - max by ({proc_k}) (max_over_time({PROC_LAST_EVENT.name}{live_sel}[{s.vanished_within}]))"
        f" unless on ({proc_k}) {PROC_LAST_EVENT.name}{live_sel}",
    ] + [
        f"absent({PROC_LAST_EVENT.name}{selector_body({**live, 'source': src})}) * Inf"
        for src in s.expected_sources
    ]
    ingest = [
        INGEST_AGE,
        f"time() - max by (source) (max_over_time({INGEST_LAST_EVENT.name}[{s.vanished_within}]))"
        f" unless on (source) {INGEST_LAST_EVENT.name}",
    ]
    union = "\n  or ".join(
        [const_label(f"({p})", "stage", "processor") for p in processor]
        + [const_label(f"({p})", "stage", "ingest") for p in ingest]
    )
    newest = Recording(NEWEST_AGE, copy_label(f"\n  {union}\n", "platform", "source"))
    special = dict(s.per_source_seconds)
    over = [f"{NEWEST_AGE}{selector_body({'source': src})} > {sec}" for src, sec in special.items()]
    rest = selector_body({"source": "!~" + "|".join(special)}) if special else ""
    over.append(f"{NEWEST_AGE}{rest} > {s.threshold_seconds}")
    stalled = Recording(STALLED, "\nor ".join(f"({o})" for o in over))
    return (proc_age, ingest_age, watermark_age, newest, stalled)


# --- pipeline gauges -----------------------------------------------------------------------

LAG = record_name(keys(PROC_CONSUMER_LAG, ("topic",)), PROC_CONSUMER_LAG.name, "sum")


def lag_rule() -> Recording:
    # max per partition first: during a rebalance two workers may report the same partition.
    part = by(keys(PROC_CONSUMER_LAG, ("topic", "partition")))
    return Recording(
        LAG,
        f"sum by ({by(keys(PROC_CONSUMER_LAG, ('topic',)))}) "
        f"(max by ({part}) ({PROC_CONSUMER_LAG.name}))",
    )


# --- the rule file -------------------------------------------------------------------------

# Coarser levels the dashboards need besides each counter's own labels.
EXTRA_RATES: tuple[tuple[MetricDef, tuple[str, ...]], ...] = (
    (SMM_MENTIONS, ("platform",)),
    (SMO_SHARE_CLICKS, ("site",)),
    (SMO_SOCIAL_REFERRALS, ("site",)),
    (SMO_SOCIAL_CONVERSIONS, ("site",)),
    (PROC_EVENTS, ("source",)),
    (INGEST_DEAD_LETTERS, ("reason",)),
)


def _rates(metrics: tuple[MetricDef, ...], cfg: Config) -> list[Recording]:
    wanted: list[tuple[MetricDef, tuple[str, ...], str]] = [
        (m, own_labels(m), cfg.rate_window) for m in metrics if m.type == "counter"
    ]
    wanted += [(m, lbls, cfg.rate_window) for m, lbls in EXTRA_RATES if m in metrics]
    for ratio in RATIOS:
        wanted += [(m, lbls, ratio.window(cfg)) for m, lbls in ratio.rates() if m in metrics]
    seen: dict[str, Recording] = {}
    for m, lbls, w in wanted:
        rule = rate_rule(m, lbls, w)
        seen.setdefault(rule.record, rule)
    return list(seen.values())


def _ratios(metrics: tuple[MetricDef, ...], cfg: Config) -> list[Recording]:
    return [r.rule(cfg) for r in RATIOS if r.numerator in metrics]


def groups(cfg: Config = CONFIG) -> tuple[Group, ...]:
    pipeline = PIPELINE_METRICS + INGEST_METRICS
    return (
        Group("ripple-freshness", stall_rules(cfg)),
        Group("ripple-baselines", tuple(r for d in DETECTORS for r in detector_rules(d, cfg))),
        Group(
            "ripple-smm",
            tuple(_rates(SMM_METRICS, cfg) + _ratios(SMM_METRICS, cfg) + [net_sentiment_rule(cfg)]),
        ),
        Group("ripple-smo", tuple(_rates(SMO_METRICS, cfg) + _ratios(SMO_METRICS, cfg))),
        Group("ripple-pipeline", tuple(_rates(pipeline, cfg) + [lag_rule()])),
    )


def recorded_names(cfg: Config = CONFIG) -> set[str]:
    return {r.record for g in groups(cfg) for r in g.rules if isinstance(r, Recording)}
