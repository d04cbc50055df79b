"""Grafana dashboards (SMM, SMO, pipeline), built with grafana-foundation-sdk (Grafana 11).

Boards are described as plain specs first (``boards()``: rows of panels of PromQL queries),
then rendered through the SDK (``dashboards()``). Queries name metrics only through the
catalogue's ``MetricDef`` constants and the recording rules of ``dashboards.rules``; ratios are
quotients of sums of raw counter rates, never averages of ratios. ``panel_queries()`` lists
every query with the dashboard variables filled in, for checks against a real Prometheus.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from grafana_foundation_sdk.builders import (
    bargauge,
    common,
    prometheus,
    stat,
    table,
    text,
    timeseries,
)
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm
from grafana_foundation_sdk.models import text as tm

from dashboards.config import CONFIG, Config
from dashboards.promql import selector_body
from dashboards.rules import (
    DETECTORS,
    LAG,
    NET_SENTIMENT,
    NEWEST_AGE,
    RATIOS,
    WATERMARK_AGE,
    detector,
    rate_name,
)
from ingest.metricdefs import (
    COLLECTOR_REQUESTS,
    COLLECTOR_SPOOLED,
    INGEST_DEAD_LETTERS,
    INGEST_EVENTS,
    INGEST_LAG,
    INGEST_PRODUCE_ERRORS,
    INGEST_RATE_LIMITED,
    INGEST_RECONNECTS,
    MetricDef,
)
from processors.catalogue import (
    PROC_BATCH_SECONDS,
    PROC_DEAD_LETTERS,
    PROC_DUPLICATES,
    PROC_EVENTS,
    PROC_FRESHNESS,
    PROC_LATE,
    PROC_WATERMARK,
    PROC_WINDOWS_CLOSED,
    SMM_AMPLIFIABLE_POSTS,
    SMM_CAMPAIGN_MENTIONS,
    SMM_ENGAGEMENTS,
    SMM_MENTIONS,
    SMM_MENTIONS_BY_SENTIMENT,
    SMM_POTENTIAL_REACH,
    SMM_RESHARES,
    SMM_UNIQUE_AUTHORS,
    SMO_CAMPAIGN_PAGEVIEWS,
    SMO_PAGEVIEWS,
    SMO_PAID_SOCIAL_REFERRALS,
    SMO_SHARE_CLICKS,
    SMO_SOCIAL_CONVERSION_VALUE,
    SMO_SOCIAL_CONVERSIONS,
    SMO_SOCIAL_REFERRALS,
    STREAM_ALERT_FIRING,
)

PanelKind = Literal["timeseries", "stat", "bargauge", "table", "text"]


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False  # tables, bar gauges and stats over the dashboard's range
    title: str = ""  # column title in tables


@dataclass(frozen=True)
class Panel:
    kind: PanelKind
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    width: int = 12
    height: int = 8
    stack: bool = False
    # (value, colour) steps drawn as lines on ratio graphs (e.g. the drop thresholds).
    thresholds: tuple[tuple[float, str], ...] = ()
    content: str = ""  # text panels (Markdown)


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    metric: MetricDef
    label_name: str
    filters: Mapping[str, str] = field(default_factory=dict)
    multi: bool = True  # multi-select with "All" (regex ".*")
    default: str = ""


@dataclass(frozen=True)
class Board:
    name: str  # file name and key of the uid in the config
    title: str
    description: str
    variables: tuple[Variable, ...]
    rows: tuple[Row, ...]


# --- query helpers -------------------------------------------------------------------------

PER_MIN = " * 60"  # recorded rates are per second; marketers read per minute


def _rate(metric: MetricDef, labels: tuple[str, ...], sel: str, cfg: Config) -> str:
    return f"{rate_name(metric, labels, cfg.rate_window)}{sel}"


def _slow(metric: MetricDef, labels: tuple[str, ...], sel: str, cfg: Config) -> str:
    return f"{rate_name(metric, labels, cfg.slow_window)}{sel}"


def _total(metric: MetricDef, sel: str, by: str = "") -> str:
    """Sum of a raw counter's increase over the dashboard's time range."""
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (increase({metric.name}{sel}[$__range]))"


def _quotient(num: str, den: str, match: str = "") -> str:
    """num / den, absent where den is 0 (METRICS.md: no ratio without a denominator)."""
    return f"{num} / {match}({den} > 0)"


def _ratio_record(name: str, slow: bool = False) -> str:
    return next(r.record() for r in RATIOS if r.name == name and r.slow == slow)


def _or_zero(expr: str) -> str:
    # Rare events (late, dead letters, duplicates, retries): 0 rather than "No data".
    return f"({expr}) or on () vector(0)"


def _ts(title: str, description: str, *queries: Query, **kw: Any) -> Panel:
    return Panel("timeseries", title, description, queries, **kw)


def _stat(title: str, description: str, expr: str, unit: str = "short") -> Panel:
    return Panel("stat", title, description, (Query(expr, instant=True),), unit, width=4, height=4)


def _rule_lines(name: str, cfg: Config) -> tuple[tuple[float, str], ...]:
    """Fire (red) and resolve (green) factors of a rule-table alert, for its ratio graph."""
    factor, _, resolve = cfg.rule(name)
    return tuple(sorted(((factor, "red"), (resolve, "green"))))


def _rule_text(name: str, cfg: Config) -> str:
    factor, floor, resolve = cfg.rule(name)
    if detector(name).alert.kind == "drop":
        return f"{name}: fires under {factor:g} (baseline at least {floor:g}), resolves above {resolve:g}."
    return f"{name}: fires at {factor:g} or more (at least {floor:g} in the window), resolves under {resolve:g}."


def _sentiment(label: str, sel: str, by: str, cfg: Config) -> str:
    rate = rate_name(SMM_MENTIONS_BY_SENTIMENT, ("brand", "platform", "sentiment"), cfg.rate_window)
    return f'sum by ({by}) ({rate}{sel[:-1]}, sentiment="{label}"}})'


def _net(pos: str, neg: str) -> str:
    """(positive - negative) / (positive + negative), absent where that sum is 0."""
    p, n = f"({pos} or 0 * {neg})", f"({neg} or 0 * {pos})"
    return f"({p} - {n}) / (({p} + {n}) > 0)"


TOP_LISTS_TEXT = """\
**Top posts, authors and links this hour** are not Prometheus series: post ids, author
ids and URLs are never labels (METRICS.md). They are rows of the results
(`top_posts`, `top_authors`, `top_links`, 1h windows, ten ranks per brand and platform) in
`<namespace>.results` and in a replay's results file; `ripple report` shows them."""


# --- SMM -----------------------------------------------------------------------------------


def smm_board(cfg: Config = CONFIG) -> Board:
    ns = "$namespace"
    sel = selector_body({"namespace": ns, "brand": "=~$brand", "platform": "=~$platform"})
    all_brands = selector_body({"namespace": ns, "platform": "=~$platform"})
    bp = ("brand", "platform")

    def per_brand(metric: MetricDef) -> str:
        return f"sum by (brand) ({_rate(metric, bp, sel, cfg)}){PER_MIN}"

    def brand_quotient(num: MetricDef, den: MetricDef) -> str:
        return _quotient(
            f"sum by (brand) ({_rate(num, bp, sel, cfg)})",
            f"sum by (brand) ({_rate(den, bp, sel, cfg)})",
        )

    def range_quotient(num: MetricDef, den: MetricDef, by: str = "") -> str:
        return _quotient(_total(num, sel, by), _total(den, sel, by))

    sov_total = f"sum ({_rate(SMM_MENTIONS, bp, all_brands, cfg)})"
    eng, men, neg = (
        detector(n) for n in ("EngagementDrop", "MentionSpike", "NegativeSentimentSpike")
    )
    brand_alerts = "|".join(d.name for d in DETECTORS if "brand" in d.labels)
    pos_b, neg_b = (
        _sentiment("positive", sel, "brand", cfg),
        _sentiment("negative", sel, "brand", cfg),
    )
    sentiments = selector_body(
        {
            "namespace": ns,
            "brand": "=~$brand",
            "platform": "=~$platform",
            "sentiment": "=~positive|negative|neutral",
        }
    )
    sent_rate = rate_name(
        SMM_MENTIONS_BY_SENTIMENT, ("brand", "platform", "sentiment"), cfg.rate_window
    )
    pos_r = _total(SMM_MENTIONS_BY_SENTIMENT, sel[:-1] + ', sentiment="positive"}', "brand")
    neg_r = _total(SMM_MENTIONS_BY_SENTIMENT, sel[:-1] + ', sentiment="negative"}', "brand")
    return Board(
        name="smm",
        title="Ripple · SMM (brands)",
        description="Social media marketing: mentions, reach and engagement per brand and platform, competitors side by side.",
        variables=(
            Variable("namespace", "Namespace", PROC_WATERMARK, "namespace", multi=False, default=cfg.live_namespace),
            Variable("brand", "Brand", SMM_MENTIONS, "brand", {"namespace": ns}),
            Variable("platform", "Platform", SMM_MENTIONS, "platform", {"namespace": ns}),
        ),
        rows=(
            Row("Over the selected time range", (
                _stat("Mentions", SMM_MENTIONS.help, _total(SMM_MENTIONS, sel)),
                _stat("Unique authors", SMM_UNIQUE_AUTHORS.help, _total(SMM_UNIQUE_AUTHORS, sel)),
                _stat("Potential reach", SMM_POTENTIAL_REACH.help, _total(SMM_POTENTIAL_REACH, sel)),
                _stat("Engagements", SMM_ENGAGEMENTS.help, _total(SMM_ENGAGEMENTS, sel)),
                _stat("Engagement rate", "Engagements / potential reach, from the sums over the range.",
                      range_quotient(SMM_ENGAGEMENTS, SMM_POTENTIAL_REACH), "percentunit"),
                _stat("Amplification", "Reshares of brand content / posts that mention or come from the brand.",
                      range_quotient(SMM_RESHARES, SMM_AMPLIFIABLE_POSTS), "percentunit"),
            )),
            Row("Per brand", (
                _ts("Mentions per minute", SMM_MENTIONS.help, Query(per_brand(SMM_MENTIONS), "{{brand}}")),
                _ts("Engagements per minute", SMM_ENGAGEMENTS.help, Query(per_brand(SMM_ENGAGEMENTS), "{{brand}}")),
                _ts("Unique authors per minute", SMM_UNIQUE_AUTHORS.help, Query(per_brand(SMM_UNIQUE_AUTHORS), "{{brand}}")),
                _ts("Potential reach per minute", SMM_POTENTIAL_REACH.help, Query(per_brand(SMM_POTENTIAL_REACH), "{{brand}}")),
                _ts("Engagement rate", "Engagements / potential reach (sums over the selected platforms).",
                    Query(brand_quotient(SMM_ENGAGEMENTS, SMM_POTENTIAL_REACH), "{{brand}}"), unit="percentunit"),
                _ts("Amplification", "Reshares of brand content / posts that mention or come from the brand.",
                    Query(brand_quotient(SMM_RESHARES, SMM_AMPLIFIABLE_POSTS), "{{brand}}"), unit="percentunit"),
            )),
            Row("Competitors side by side", (
                _ts("Share of voice", "A brand's mentions / the mentions of every tracked brand and competitor on the selected platforms.",
                    Query(_quotient(f"sum by (brand) ({_rate(SMM_MENTIONS, bp, sel, cfg)})", sov_total, "on () group_left () "), "{{brand}}"),
                    unit="percentunit"),
                Panel("bargauge", "Share of voice over the range", "Mentions of each brand / all tracked brands' mentions over the selected range.",
                      (Query(_quotient(_total(SMM_MENTIONS, sel, "brand"), _total(SMM_MENTIONS, all_brands), "on () group_left () "), "{{brand}}", instant=True),),
                      unit="percentunit"),
                Panel("table", "Brands over the range", "Each brand's totals and ratios over the selected range and platforms.", (
                    Query(_total(SMM_MENTIONS, sel, "brand"), instant=True, title="Mentions"),
                    Query(_total(SMM_UNIQUE_AUTHORS, sel, "brand"), instant=True, title="Unique authors"),
                    Query(_total(SMM_POTENTIAL_REACH, sel, "brand"), instant=True, title="Potential reach"),
                    Query(_total(SMM_ENGAGEMENTS, sel, "brand"), instant=True, title="Engagements"),
                    Query(range_quotient(SMM_ENGAGEMENTS, SMM_POTENTIAL_REACH, "brand"), instant=True, title="Engagement rate"),
                    Query(range_quotient(SMM_RESHARES, SMM_AMPLIFIABLE_POSTS, "brand"), instant=True, title="Amplification"),
                    Query(_quotient(_total(SMM_MENTIONS, sel, "brand"), _total(SMM_MENTIONS, all_brands), "on () group_left () "), instant=True, title="Share of voice"),
                ), width=24),
            )),
            Row("Per brand and platform", (
                _ts("Mentions per minute by platform", SMM_MENTIONS.help,
                    Query(f"{_rate(SMM_MENTIONS, bp, sel, cfg)}{PER_MIN}", "{{brand}} · {{platform}}"), width=8),
                _ts("Engagement rate by platform", "Recorded engagement rate per brand and platform.",
                    Query(f"{_ratio_record('ripple_smm_engagement_rate')}{sel}", "{{brand}} · {{platform}}"), unit="percentunit", width=8),
                _ts("Share of voice by platform", "Recorded share of voice per brand and platform.",
                    Query(f"{_ratio_record('ripple_smm_share_of_voice')}{sel}", "{{brand}} · {{platform}}"), unit="percentunit", width=8),
                _ts("Amplification by platform", "Recorded amplification per brand and platform.",
                    Query(f"{_ratio_record('ripple_smm_amplification')}{sel}", "{{brand}} · {{platform}}"), unit="percentunit", width=8),
                _ts("Campaign mentions per minute", SMM_CAMPAIGN_MENTIONS.help,
                    Query(f"{_rate(SMM_CAMPAIGN_MENTIONS, ('campaign', 'platform'), all_brands, cfg)}{PER_MIN}", "{{campaign}} · {{platform}}"), width=16),
            )),
            Row("Sentiment", (
                _ts("Net sentiment per brand", "(positive - negative) / (positive + negative) posts mentioning each brand (VADER), competitors side by side.",
                    Query(_net(pos_b, neg_b), "{{brand}}"), unit="percentunit"),
                _ts("Mentions by sentiment per minute", f"{SMM_MENTIONS_BY_SENTIMENT.help} Positive, negative and neutral, stacked.",
                    Query(f"sum by (sentiment) ({sent_rate}{sentiments}){PER_MIN}", "{{sentiment}}"), stack=True),
                _ts("Net sentiment by platform", "Recorded net sentiment per brand and platform.",
                    Query(f"{NET_SENTIMENT}{cfg.rate_window}{sel}", "{{brand}} · {{platform}}"), unit="percentunit", width=8),
                Panel("bargauge", "Net sentiment over the range", "Net sentiment of each brand from the sums over the selected range.",
                      (Query(_net(pos_r, neg_r), "{{brand}}", instant=True),), unit="percentunit", width=8),
                Panel("text", "Top posts, authors and links", "Where the top lists are.", (), width=8, content=TOP_LISTS_TEXT),
            )),
            Row("Alerts (EngagementDrop, MentionSpike, NegativeSentimentSpike)", (
                _ts("Engagements: last 15m and baseline", "The detector's inputs: engagements in the last window and the baseline (a week earlier, else the trailing mean).",
                    Query(f"{eng.current(cfg)}{sel}", "{{brand}} · {{platform}} last " + cfg.baseline.window),
                    Query(f"{eng.baseline(cfg)}{sel}", "{{brand}} · {{platform}} baseline")),
                _ts("Engagements / baseline", _rule_text(eng.name, cfg),
                    Query(f"{eng.ratio(cfg)}{sel}", "{{brand}} · {{platform}}"), unit="percentunit", thresholds=_rule_lines(eng.name, cfg)),
                _ts("Mentions / baseline", _rule_text(men.name, cfg),
                    Query(f"{men.ratio(cfg)}{sel}", "{{brand}} · {{platform}}"), unit="percentunit", thresholds=_rule_lines(men.name, cfg)),
                _ts("Negative mentions / baseline", _rule_text(neg.name, cfg),
                    Query(f"{neg.ratio(cfg)}{sel}", "{{brand}} · {{platform}}"), unit="percentunit", thresholds=_rule_lines(neg.name, cfg)),
                _ts("Alerts firing", "Prometheus alerts (wall clock) and stream-side alerts (event time) of the brands' rule table.",
                    Query(f'count by (alertname) (ALERTS{selector_body({"alertstate": "firing", "alertname": "=~" + brand_alerts, "namespace": ns})}) or on () vector(0)', "{{alertname}} (Prometheus)"),
                    Query(f"sum by (alertname) ({STREAM_ALERT_FIRING.name}{selector_body({'namespace': ns, 'alertname': '=~' + brand_alerts})})", "{{alertname}} (stream)"), width=24),
            )),
        ),
    )  # fmt: skip


# --- SMO -----------------------------------------------------------------------------------


def smo_board(cfg: Config = CONFIG) -> Board:
    ns = "$namespace"
    sel = selector_body({"namespace": ns, "site": "=~$site"})
    sn = ("site", "network")
    site = ("site",)

    def per_network(metric: MetricDef) -> str:
        return f"sum by (network) ({_rate(metric, sn, sel, cfg)}){PER_MIN}"

    def slow_quotient(num: MetricDef, den: MetricDef) -> str:
        return _quotient(
            f"sum by (network) ({_slow(num, sn, sel, cfg)})",
            f"sum by (network) ({_slow(den, sn, sel, cfg)})",
        )

    drop = detector("SocialReferralDrop")

    def organic() -> str:
        paid = f"sum by (network) ({_rate(SMO_PAID_SOCIAL_REFERRALS, sn, sel, cfg)})"
        social = f"sum by (network) ({_rate(SMO_SOCIAL_REFERRALS, sn, sel, cfg)})"
        return f"({social} - ({paid} or 0 * {social})){PER_MIN}"

    return Board(
        name="smo",
        title="Ripple · SMO (sites)",
        description="Social media optimization: pageviews, social referrals, share clicks and social conversions per site and network.",
        variables=(
            Variable("namespace", "Namespace", PROC_WATERMARK, "namespace", multi=False, default=cfg.live_namespace),
            Variable("site", "Site", SMO_PAGEVIEWS, "site", {"namespace": ns}),
        ),
        rows=(
            Row("Over the selected time range", (
                _stat("Pageviews", SMO_PAGEVIEWS.help, _total(SMO_PAGEVIEWS, sel)),
                _stat("Social referrals", SMO_SOCIAL_REFERRALS.help, _total(SMO_SOCIAL_REFERRALS, sel)),
                _stat("Share clicks", SMO_SHARE_CLICKS.help, _total(SMO_SHARE_CLICKS, sel)),
                _stat("Share rate", "All share clicks / pageviews.",
                      _quotient(_total(SMO_SHARE_CLICKS, sel), _total(SMO_PAGEVIEWS, sel)), "percentunit"),
                _stat("Social conversions", SMO_SOCIAL_CONVERSIONS.help, _total(SMO_SOCIAL_CONVERSIONS, sel)),
                _stat("Social conversion rate", "Social conversions / social referrals.",
                      _quotient(_total(SMO_SOCIAL_CONVERSIONS, sel), _total(SMO_SOCIAL_REFERRALS, sel)), "percentunit"),
                _stat("Paid social referrals", SMO_PAID_SOCIAL_REFERRALS.help, _total(SMO_PAID_SOCIAL_REFERRALS, sel)),
                _stat("Social conversion value", SMO_SOCIAL_CONVERSION_VALUE.help, _total(SMO_SOCIAL_CONVERSION_VALUE, sel)),
            )),
            Row("Paid and organic social", (
                _ts("Paid vs organic social referrals per minute by network", "Social referrals whose utm_medium marks paid social (paid*, cpc, ppc), and the rest.",
                    Query(f"sum by (network) ({_rate(SMO_PAID_SOCIAL_REFERRALS, sn, sel, cfg)}){PER_MIN}", "{{network}} paid"),
                    Query(organic(), "{{network}} organic"), stack=True),
                _ts("Paid share of social referrals", "Recorded paid social referrals / social referrals per site and network.",
                    Query(f"{_ratio_record('ripple_smo_paid_social_share')}{sel}", "{{site}} · {{network}}"), unit="percentunit"),
                _ts("Social conversion value per minute by network", SMO_SOCIAL_CONVERSION_VALUE.help,
                    Query(per_network(SMO_SOCIAL_CONVERSION_VALUE), "{{network}}"), stack=True),
                _ts(f"Conversion value per social conversion ({cfg.slow_window})", "Sum of social conversion values / social conversions, per network.",
                    Query(slow_quotient(SMO_SOCIAL_CONVERSION_VALUE, SMO_SOCIAL_CONVERSIONS), "{{network}}")),
            )),
            Row("Traffic", (
                _ts("Pageviews per minute", SMO_PAGEVIEWS.help,
                    Query(f"{_rate(SMO_PAGEVIEWS, site, sel, cfg)}{PER_MIN}", "{{site}}")),
                _ts("Social referrals per minute by network", SMO_SOCIAL_REFERRALS.help,
                    Query(per_network(SMO_SOCIAL_REFERRALS), "{{network}}"), stack=True),
                Panel("bargauge", "Social referrals by network over the range", SMO_SOCIAL_REFERRALS.help,
                      (Query(_total(SMO_SOCIAL_REFERRALS, sel, "network"), "{{network}}", instant=True),)),
                _ts("Social referrals per minute by site", SMO_SOCIAL_REFERRALS.help,
                    Query(f"{_rate(SMO_SOCIAL_REFERRALS, site, sel, cfg)}{PER_MIN}", "{{site}}")),
            )),
            Row("Sharing", (
                _ts("Share clicks per minute by network", SMO_SHARE_CLICKS.help,
                    Query(per_network(SMO_SHARE_CLICKS), "{{network}}"), stack=True),
                _ts("Share rate", "All share clicks of a site / its pageviews (recorded).",
                    Query(f"{_ratio_record('ripple_smo_share_rate')}{sel}", "{{site}}"), unit="percentunit"),
                _ts(f"Referral yield ({cfg.slow_window})", "Social referrals from a network / share clicks to it, over 1h windows.",
                    Query(slow_quotient(SMO_SOCIAL_REFERRALS, SMO_SHARE_CLICKS), "{{network}}")),
                _ts(f"Referral yield by site ({cfg.slow_window})", "Recorded referral yield per site and network.",
                    Query(f"{_ratio_record('ripple_smo_referral_yield', slow=True)}{sel}", "{{site}} · {{network}}")),
            )),
            Row("Conversions", (
                _ts("Social conversions per minute by network", SMO_SOCIAL_CONVERSIONS.help,
                    Query(per_network(SMO_SOCIAL_CONVERSIONS), "{{network}}"), stack=True),
                _ts(f"Social conversion rate ({cfg.slow_window})", "Social conversions / social referrals, per network.",
                    Query(slow_quotient(SMO_SOCIAL_CONVERSIONS, SMO_SOCIAL_REFERRALS), "{{network}}"), unit="percentunit"),
                Panel("table", "Networks over the range", "Per network: referrals, share clicks, yield, conversions and conversion rate over the selected range.", (
                    Query(_total(SMO_SOCIAL_REFERRALS, sel, "network"), instant=True, title="Social referrals"),
                    Query(_total(SMO_SHARE_CLICKS, sel, "network"), instant=True, title="Share clicks"),
                    Query(_quotient(_total(SMO_SOCIAL_REFERRALS, sel, "network"), _total(SMO_SHARE_CLICKS, sel, "network")), instant=True, title="Referral yield"),
                    Query(_total(SMO_SOCIAL_CONVERSIONS, sel, "network"), instant=True, title="Social conversions"),
                    Query(_quotient(_total(SMO_SOCIAL_CONVERSIONS, sel, "network"), _total(SMO_SOCIAL_REFERRALS, sel, "network")), instant=True, title="Conversion rate"),
                ), width=24),
                _ts("Campaign pageviews per minute", SMO_CAMPAIGN_PAGEVIEWS.help,
                    Query(f"{_rate(SMO_CAMPAIGN_PAGEVIEWS, ('site', 'campaign'), sel, cfg)}{PER_MIN}", "{{campaign}} · {{site}}")),
                _ts("Social referrals / baseline (SocialReferralDrop)", _rule_text(drop.name, cfg),
                    Query(f"{drop.ratio(cfg)}{sel}", "{{site}} · {{network}}"), unit="percentunit", thresholds=_rule_lines(drop.name, cfg)),
            )),
        ),
    )  # fmt: skip


# --- pipeline ------------------------------------------------------------------------------


def pipeline_board(cfg: Config = CONFIG) -> Board:
    ns = "$namespace"
    sel = selector_body({"namespace": ns})
    workers = selector_body({"job": cfg.worker_job})
    return Board(
        name="pipeline",
        title="Ripple · pipeline",
        description="Events in per source, throughput, consumer lag, watermark and freshness, late events, dead letters and worker health.",
        variables=(
            Variable("namespace", "Namespace", PROC_WATERMARK, "namespace", multi=False, default=cfg.live_namespace),
        ),
        rows=(
            Row("Health", (
                _stat("Workers up", "Workers Prometheus scrapes successfully.", f"sum (up{workers})"),
                _stat("Events processed /s", PROC_EVENTS.help, f"sum ({_rate(PROC_EVENTS, ('source',), sel, cfg)})", "ops"),
                _stat("Consumer lag", "Records behind, all topics.", f"sum ({LAG}{sel})"),
                _stat("Watermark age", "Wall clock minus the event-time watermark (a replay's is its age in history).",
                      f"max ({WATERMARK_AGE}{sel})", "s"),
                _stat("Firing alerts", "Prometheus alerts firing now.", 'count (ALERTS{alertstate="firing"}) or on () vector(0)'),
                _stat("Collector spool", COLLECTOR_SPOOLED.help, f"sum ({COLLECTOR_SPOOLED.name}) or on () vector(0)"),
            )),
            Row("Flow", (
                _ts("Events in per source (ingestors)", INGEST_EVENTS.help,
                    Query(f"sum by (source) ({_rate(INGEST_EVENTS, ('source', 'kind'), '', cfg)})", "{{source}}"), unit="ops", stack=True),
                _ts("Events processed per source", PROC_EVENTS.help,
                    Query(_rate(PROC_EVENTS, ("source",), sel, cfg), "{{source}}"), unit="ops", stack=True),
                _ts("Throughput by kind", PROC_EVENTS.help,
                    Query(f"sum by (kind) ({_rate(PROC_EVENTS, ('source', 'kind'), sel, cfg)})", "{{kind}}"), unit="ops", stack=True),
                _ts("Batch processing time", PROC_BATCH_SECONDS.help,
                    Query(f"histogram_quantile(0.5, sum by (le, stage) (rate({PROC_BATCH_SECONDS.name}_bucket{sel}[$__rate_interval])))", "p50 {{stage}}"),
                    Query(f"histogram_quantile(0.99, sum by (le, stage) (rate({PROC_BATCH_SECONDS.name}_bucket{sel}[$__rate_interval])))", "p99 {{stage}}"),
                    unit="s"),
            )),
            Row("Lag, watermark and freshness", (
                _ts("Consumer lag by topic", "Records between the end of each topic and the workers' position.",
                    Query(f"{LAG}{sel}", "{{topic}}")),
                _ts("Watermark age", "Wall clock minus the largest event time seen.",
                    Query(f"{WATERMARK_AGE}{sel}", "{{namespace}}"), unit="s"),
                _ts("Data freshness per source", PROC_FRESHNESS.help,
                    Query(f"max by (source) ({PROC_FRESHNESS.name}{sel})", "{{source}}"), unit="s"),
                _ts("Newest event age (live)", "Age of each source's newest event, as the ingestors and the live workers see it; IngestStalled fires past the source's threshold.",
                    Query(NEWEST_AGE, "{{source}} ({{stage}})"),
                    Query(f"max by (source) ({INGEST_LAG.name})", "{{source}} (ingest lag)"), unit="s"),
            )),
            Row("Quality", (
                _ts("Late events", PROC_LATE.help,
                    Query(_or_zero(_rate(PROC_LATE, ("window", "reason"), sel, cfg)), "{{window}} {{reason}}"), unit="ops"),
                _ts("Dead letters by reason", f"{PROC_DEAD_LETTERS.help} / {INGEST_DEAD_LETTERS.help}",
                    Query(_or_zero(_rate(PROC_DEAD_LETTERS, ("reason",), sel, cfg)), "processor {{reason}}"),
                    Query(_or_zero(f"sum by (source, reason) ({_rate(INGEST_DEAD_LETTERS, ('source', 'reason'), '', cfg)})"), "ingest {{source}} {{reason}}"),
                    unit="ops"),
                _ts("Duplicates dropped", PROC_DUPLICATES.help,
                    Query(_or_zero(_rate(PROC_DUPLICATES, ("source",), sel, cfg)), "{{source}}"), unit="ops"),
                _ts("Windows closed", PROC_WINDOWS_CLOSED.help,
                    Query(_rate(PROC_WINDOWS_CLOSED, ("window",), sel, cfg), "{{window}}"), unit="ops"),
            )),
            Row("Workers and ingestors", (
                _ts("Worker health", "1 while Prometheus scrapes the worker, 0 when it is down.",
                    Query(f"up{workers}", "{{instance}}"), width=8),
                _ts("Ingestor retries", f"{INGEST_RECONNECTS.help} / {INGEST_RATE_LIMITED.help} / {INGEST_PRODUCE_ERRORS.help}",
                    Query(_or_zero(_rate(INGEST_RECONNECTS, ("source",), "", cfg)), "reconnects {{source}}"),
                    Query(_or_zero(_rate(INGEST_RATE_LIMITED, ("source",), "", cfg)), "rate limited {{source}}"),
                    Query(_or_zero(_rate(INGEST_PRODUCE_ERRORS, ("source",), "", cfg)), "produce retries {{source}}"),
                    unit="ops", width=8),
                _ts("Collector requests by status", COLLECTOR_REQUESTS.help,
                    Query(f"sum by (status) ({_rate(COLLECTOR_REQUESTS, ('site', 'status'), '', cfg)})", "{{status}}"), unit="reqps", width=8),
            )),
        ),
    )  # fmt: skip


def boards(cfg: Config = CONFIG) -> tuple[Board, ...]:
    return (smm_board(cfg), smo_board(cfg), pipeline_board(cfg))


# --- rendering through the SDK -------------------------------------------------------------


def _datasource(cfg: Config) -> dm.DataSourceRef:
    return dm.DataSourceRef(type_val="prometheus", uid=cfg.grafana.datasource_uid)


def _variable(v: Variable, cfg: Config) -> dash.QueryVariable:
    query = f"label_values({v.metric.name}{selector_body(dict(v.filters))}, {v.label_name})"
    var = (
        dash.QueryVariable(v.name)
        .label(v.label)
        .datasource(_datasource(cfg))
        .query(query)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )
    if v.multi:
        all_ = dm.VariableOption(selected=True, text=["All"], value=["$__all"])
        return var.multi(True).include_all(True).all_value(".*").current(all_)
    return var.current(dm.VariableOption(selected=True, text=v.default, value=v.default))


def _targets(p: Panel, cfg: Config) -> list[prometheus.Dataquery]:
    out = []
    for i, q in enumerate(p.queries):
        t = (
            prometheus.Dataquery()
            .ref_id(chr(ord("A") + i))
            .expr(q.expr)
            .datasource(_datasource(cfg))
            .legend_format(q.legend or "__auto")
        )
        if p.kind == "table":
            t = t.instant().format(pm.PromQueryFormat.TABLE)
        elif q.instant:
            t = t.instant()
        else:
            t = t.range()
        out.append(t)
    return out


def _thresholds(steps: tuple[tuple[float, str], ...]) -> dash.ThresholdsConfig:
    first = steps[0][1] if steps else "green"
    return (
        dash.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps(
            [dm.Threshold(value=None, color=first)]
            + [dm.Threshold(value=v, color=c) for v, c in steps]
        )
    )


def _panel(p: Panel, panel_id: int, cfg: Config) -> Any:
    reduce = common.ReduceDataOptions().calcs(["lastNotNull"]).values(False)
    builder: Any
    if p.kind == "text":
        return (
            text.Panel()
            .id(panel_id)
            .title(p.title)
            .description(p.description)
            .mode(tm.TextMode.MARKDOWN)
            .content(p.content)
            .span(p.width)
            .height(p.height)
        )
    if p.kind == "timeseries":
        builder = (
            timeseries.Panel()
            .fill_opacity(10)
            .line_width(1)
            .show_points(cm.VisibilityMode.NEVER)
            .legend(
                common.VizLegendOptions()
                .display_mode(cm.LegendDisplayMode.TABLE)
                .placement(cm.LegendPlacement.BOTTOM)
                .show_legend(True)
                .calcs(["lastNotNull", "max"])
            )
        )
        if p.stack:
            builder = builder.stacking(common.StackingConfig().mode(cm.StackingMode.NORMAL))
        if p.thresholds:
            builder = builder.thresholds_style(
                common.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.LINE)
            )
    elif p.kind == "stat":
        builder = stat.Panel().reduce_options(reduce).graph_mode(cm.BigValueGraphMode.NONE)
    elif p.kind == "bargauge":
        builder = (
            bargauge.Panel()
            .reduce_options(reduce)
            .orientation(cm.VizOrientation.HORIZONTAL)
            .display_mode(cm.BarGaugeDisplayMode.GRADIENT)
        )
    else:
        rename = {f"Value #{chr(ord('A') + i)}": q.title for i, q in enumerate(p.queries)}
        builder = (
            table.Panel()
            .with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
            .with_transformation(
                dm.DataTransformerConfig(
                    id_val="organize",
                    options={"excludeByName": {"Time": True}, "renameByName": rename},
                )
            )
        )
    builder = (
        builder.id(panel_id)
        .title(p.title)
        .description(p.description)
        .datasource(_datasource(cfg))
        .unit(p.unit)
        .span(p.width)
        .height(p.height)
        .targets(_targets(p, cfg))
    )
    if p.thresholds:
        builder = builder.thresholds(_thresholds(p.thresholds))
    if p.unit != "percentunit" or p.kind == "stat":
        builder = builder.min(0)
    return builder


def render(board: Board, cfg: Config = CONFIG) -> dict[str, Any]:
    """One dashboard as Grafana JSON (a plain dict; the caller sorts keys)."""
    d = (
        dash.Dashboard(board.title)
        .uid(cfg.grafana.uid(board.name))
        .description(board.description)
        .tags(["ripple", board.name])
        .refresh(cfg.grafana.refresh)
        .time(cfg.grafana.time_from, "now")
        .timezone("utc")
        .readonly()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .link(
            dash.DashboardLink("Ripple")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags(["ripple"])
            .as_dropdown(False)
            .include_vars(True)
            .keep_time(True)
        )
    )
    for v in board.variables:
        d = d.with_variable(_variable(v, cfg))
    panel_id = 0
    for row in board.rows:
        panel_id += 1
        d = d.with_row(dash.Row(row.title).id(panel_id))
        for p in row.panels:
            panel_id += 1
            d = d.with_panel(_panel(p, panel_id, cfg))
    encoded: dict[str, Any] = JSONEncoder(sort_keys=True).default(d.build())
    out: dict[str, Any] = _plain(encoded)
    # Prometheus annotation queries carry fields the SDK's AnnotationQuery has no setter for.
    out.setdefault("annotations", {}).setdefault("list", []).extend(annotation_queries(board, cfg))
    return out


@dataclass(frozen=True)
class Annotation:
    name: str
    expr: str
    title: str  # titleFormat ({{label}} placeholders)
    text: str
    color: str


def _epoch(value: str) -> int:
    """A campaign date (RFC 3339, or a date: midnight UTC) as unix seconds."""
    from datetime import UTC, datetime

    at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp())


def annotation_specs(board: Board, cfg: Config = CONFIG) -> tuple[Annotation, ...]:
    """Alert fire/resolve times (Prometheus ALERTS and the stream gauge: a region while
    firing) and, on SMM and SMO, the TOML's campaign start/end dates (a region between them:
    the query is non-empty exactly while the campaign runs)."""
    if board.name not in ("smm", "smo"):
        return ()
    key = "brand" if board.name == "smm" else "site"
    names = "|".join(d.name for d in DETECTORS if key in d.labels)
    ns = "$namespace"
    out = [
        Annotation("Alerts (Prometheus)",
                   f"ALERTS{selector_body({'alertstate': 'firing', 'alertname': '=~' + names, 'namespace': ns})}",
                   "{{alertname}} (Prometheus)", "{{alertname}} " + " ".join(f"{{{{{lbl}}}}}" for lbl in (key, "platform" if key == "brand" else "network")), "red"),
        Annotation("Alerts (stream)",
                   f"{STREAM_ALERT_FIRING.name}{selector_body({'namespace': ns, 'alertname': '=~' + names})} == 1",
                   "{{alertname}} (stream, event time)", "{{alertname}} " + " ".join(f"{{{{{lbl}}}}}" for lbl in (key, "platform" if key == "brand" else "network")), "orange"),
    ]  # fmt: skip
    for c in cfg.campaigns:
        bounds = []
        if c.start:
            bounds.append(f"vector(time()) >= {_epoch(c.start)}")
        if c.end:
            bounds.append(f"vector(time()) < {_epoch(c.end)}")
        expr = f'label_replace(vector(1), "campaign", "{c.name}", "", "")'
        expr += "".join(f" and on () ({b})" for b in bounds)
        out.append(Annotation(f"Campaign {c.name}", expr, f"campaign {c.name} ({c.brand})",
                              f"{c.start or '…'} to {c.end or '…'}", "blue"))  # fmt: skip
    return tuple(out)


def annotation_queries(board: Board, cfg: Config = CONFIG) -> list[dict[str, Any]]:
    return [
        {
            "name": a.name,
            "datasource": {"type": "prometheus", "uid": cfg.grafana.datasource_uid},
            "enable": True,
            "iconColor": a.color,
            "expr": a.expr,
            "step": "60s",
            "titleFormat": a.title,
            "textFormat": a.text,
            "useValueForTime": False,
        }
        for a in annotation_specs(board, cfg)
    ]


def _plain(value: Any) -> Any:
    """The SDK's to_json() returns nested model objects; turn them into plain JSON values."""
    if hasattr(value, "to_json"):
        return _plain(value.to_json())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def dashboards(cfg: Config = CONFIG) -> dict[str, dict[str, Any]]:
    return {b.name: render(b, cfg) for b in boards(cfg)}


# --- queries, for checks -------------------------------------------------------------------

DEFAULT_VALUES = {
    "brand": ".*",
    "platform": ".*",
    "site": ".*",
    "__range": "1h",
    "__rate_interval": "1m",
    "__interval": "15s",
}
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def substitute(expr: str, values: Mapping[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"no value for dashboard variable ${name} in {expr!r}")
        return values[name]

    return _VAR.sub(repl, expr)


@dataclass(frozen=True)
class PanelQuery:
    board: str
    panel: str
    ref_id: str
    expr: str  # as in the dashboard, with $variables

    def promql(self, values: Mapping[str, str]) -> str:
        return substitute(self.expr, values)

    @property
    def needs_history(self) -> bool:
        """Reads a drop baseline, which needs 2h15m (or a week) of Prometheus history: empty
        on a freshly started Prometheus, whatever the data."""
        names = {d.baseline() for d in DETECTORS} | {d.ratio() for d in DETECTORS}
        return any(re.search(rf"\b{re.escape(n)}\b", self.expr) for n in names)


def panel_targets(cfg: Config = CONFIG) -> list[PanelQuery]:
    return [
        PanelQuery(b.name, p.title, chr(ord("A") + i), q.expr)
        for b in boards(cfg)
        for row in b.rows
        for p in row.panels
        for i, q in enumerate(p.queries)
    ]


def panel_queries(
    namespace: str | None = None, values: Mapping[str, str] | None = None, cfg: Config = CONFIG
) -> list[str]:
    """Every panel's PromQL, runnable as is: variables filled with ``values`` (default: the
    live namespace, every brand, platform and site, a 1h range)."""
    vals = {**DEFAULT_VALUES, "namespace": namespace or cfg.live_namespace, **(values or {})}
    return [t.promql(vals) for t in panel_targets(cfg)]
