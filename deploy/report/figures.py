"""The report's data: results rows (a file or a namespace's ``<ns>.results``) and every
figure and series computed from them.

The rules are the dashboards': counts are sums of 1m window rows; a ratio over a period or
a chart bucket is the ratio of the sums of its counts, never an average of window ratios
(engagement rate = sum of engagements / sum of potential reach; referral yield from 1h
rows, where METRICS.md defines it). What the rows cannot give exactly is labelled so
(unique authors over many windows, amplification) and explained in the footnotes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ingest.events import parse_ts
from processors.core.windows import iso

MINUTE, HOUR = 60, 3600
TOP_N = 10
TOP_METRICS = {"top_posts": "post", "top_authors": "author", "top_links": "link"}
# The stream alerts' series and labels (METRICS.md "Spikes and drops"), for "why it fired".
ALERT_SERIES: dict[str, tuple[str, tuple[str, ...], dict[str, str]]] = {
    "EngagementDrop": ("engagements", ("brand", "platform"), {}),
    "MentionSpike": ("mentions", ("brand", "platform"), {}),
    "NegativeSentimentSpike": (
        "mentions_by_sentiment",
        ("brand", "platform"),
        {"sentiment": "negative"},
    ),
    "SocialReferralDrop": ("social_referrals", ("site", "network"), {}),
}
SENTIMENTS = ("positive", "neutral", "negative", "unrated")


class ReportError(Exception):
    """The report cannot be made (unreadable source, no rows in the period)."""


@dataclass(frozen=True, slots=True)
class R:
    """One results row, with its window as unix seconds."""

    metric: str
    window: str
    start: float
    end: float
    labels: dict[str, str]
    value: float


def parse_rows(raw: Iterable[Mapping[str, Any]], where: str) -> list[R]:
    out = []
    for i, r in enumerate(raw, 1):
        try:
            out.append(
                R(
                    r["metric"],
                    r["window"],
                    parse_ts(r["window_start"]),
                    parse_ts(r["window_end"]),
                    dict(r["labels"]),
                    float(r["value"]),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ReportError(f"{where}: row {i} is not a results row ({exc})") from None
    return out


def load_file(path: str | Path) -> list[R]:
    """A results file (JSON Lines, optionally .gz or .zst), as ``ripple replay`` writes it."""
    from processors.history.replay import open_lines

    raw = []
    try:
        for n, line in enumerate(open_lines(path), 1):
            try:
                raw.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise ReportError(f"{path}: line {n} is not JSON ({exc})") from None
    except ReportError:
        raise
    except Exception as exc:  # OSError, gzip/zstd errors: all mean "cannot read it"
        raise ReportError(f"cannot read {path}: {exc}") from None
    return parse_rows(raw, str(path))


def load_namespace(bootstrap: str, namespace: str, timeout: float) -> list[R]:
    """``<ns>.results`` read back with the replay's reader (last revision of each row); up
    to the completion record of a replay, or to the topic's end for a live namespace."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    from ingest.topics import Topics
    from processors.history.replay import collect_results

    topic = Topics(namespace).results
    try:
        probe = KafkaConsumer(bootstrap_servers=bootstrap)
        try:
            known = topic in probe.topics()
        finally:
            probe.close()
        if not known:
            raise ReportError(f"no topic {topic} on {bootstrap}: is {namespace!r} a namespace?")
        rows = collect_results(bootstrap, namespace, timeout, stop_at_end=True)
    except KafkaError as exc:
        raise ReportError(f"cannot read {topic} from {bootstrap}: {exc}") from None
    except TimeoutError as exc:
        raise ReportError(f"{topic}: {exc}") from None
    return parse_rows(rows, topic)


@dataclass(frozen=True)
class Period:
    since: float
    until: float

    def holds(self, r: R) -> bool:
        return r.start >= self.since and r.end <= self.until

    @property
    def hour_aligned(self) -> bool:
        return self.since % HOUR == 0 and self.until % HOUR == 0

    @property
    def label(self) -> str:
        return f"{iso(self.since)} to {iso(self.until)}"


def bucket_seconds(length: float) -> int:
    """Chart resolution: a few dozen points over the period."""
    for limit, size in ((3 * HOUR, 5 * MINUTE), (12 * HOUR, 15 * MINUTE), (3 * 86400, HOUR)):
        if length <= limit:
            return size
    return 86400


class Rows:
    """Results rows indexed by (metric, window)."""

    def __init__(self, rows: Iterable[R]) -> None:
        self.by: dict[tuple[str, str], list[R]] = defaultdict(list)
        for r in rows:
            self.by[(r.metric, r.window)].append(r)

    def select(self, metric: str, window: str, period: Period, **labels: str) -> list[R]:
        return [
            r
            for r in self.by.get((metric, window), ())
            if period.holds(r) and all(r.labels.get(k) == v for k, v in labels.items())
        ]

    def total(self, metric: str, window: str, period: Period, **labels: str) -> float:
        return math.fsum(r.value for r in self.select(metric, window, period, **labels))

    def has(self, metric: str, period: Period | None = None) -> bool:
        return any(
            period is None or period.holds(r)
            for (m, _), rs in self.by.items()
            if m == metric
            for r in rs
        )

    def label_values(self, key: str, metrics: Iterable[str]) -> list[str]:
        return sorted(
            {
                r.labels[key]
                for m in metrics
                for w in ("1m", "1h")
                for r in self.by.get((m, w), ())
                if key in r.labels
            }  # fmt: skip
        )

    def count_in(self, period: Period) -> int:
        return sum(1 for rs in self.by.values() for r in rs if period.holds(r))

    def span(self) -> tuple[float, float] | None:
        windows = [r for (m, w), rs in self.by.items() if w in ("1m", "1h") for r in rs]
        if not windows:
            return None
        return min(r.start for r in windows), max(r.end for r in windows)

    def bucketed(
        self, metric: str, window: str, period: Period, step: int, by: str | None, **labels: str
    ) -> dict[tuple[float, str], float]:
        """Sums per (bucket start, value of label ``by``)."""
        out: dict[tuple[float, str], float] = defaultdict(float)
        for r in self.select(metric, window, period, **labels):
            b = period.since + (r.start - period.since) // step * step
            out[(b, r.labels.get(by, "") if by else "")] += r.value
        return out


# --- figures ---------------------------------------------------------------------------


def ratio(num: float, den: float) -> float | None:
    return num / den if den else None


@dataclass
class Figure:
    """One headline figure for the period, with the comparison period's value."""

    name: str
    value: float | None
    previous: float | None
    kind: str = "count"  # count | percent (change relative) | share (change in points) | money
    note: str = ""  # footnote mark

    def fmt(self, v: float | None) -> str:
        if v is None:
            return "–"
        if self.kind in ("percent", "share"):
            # Engagement rates are often far below 1%: three significant digits then.
            return f"{v * 100:.2f}%" if abs(v) >= 0.01 or v == 0 else f"{v * 100:.3g}%"
        if self.kind == "money":
            return f"{v:,.2f}"
        return f"{v:,.0f}"

    @property
    def shown(self) -> str:
        return self.fmt(self.value)

    @property
    def shown_previous(self) -> str:
        return self.fmt(self.previous)

    @property
    def delta(self) -> float | None:
        """Relative change (points for shares); None when there is nothing to compare."""
        if self.value is None or self.previous is None:
            return None
        if self.kind == "share":
            return self.value - self.previous
        return (self.value - self.previous) / self.previous if self.previous else None

    @property
    def direction(self) -> str:
        d = self.delta
        if d is None:
            return "new" if self.value and self.previous == 0 else "none"
        return "up" if d > 1e-12 else "down" if d < -1e-12 else "flat"

    @property
    def change(self) -> str:
        d = self.delta
        if d is None:
            return "new" if self.direction == "new" else "–"
        arrow = {"up": "▲", "down": "▼", "flat": "="}[self.direction]
        if self.kind == "share":
            return f"{arrow} {abs(d) * 100:.2f} pp"
        return f"{arrow} {abs(d) * 100:.1f}%"


@dataclass
class Series:
    """One chart's data: points of (t, series, value); ``mark`` is line, bar (stacked)."""

    key: str
    title: str
    y_title: str
    points: list[dict[str, Any]]
    mark: str = "line"
    percent: bool = False
    step: int = MINUTE
    order: list[str] | None = None  # legend order (e.g. sentiments)


@dataclass
class TopEntry:
    what: str
    platform: str
    value: float
    hours: int


@dataclass
class AlertSpan:
    alertname: str
    labels: dict[str, str]
    fired: float | None  # None: firing since before the rows begin
    resolved: float | None  # None: still firing at the end of the period
    why: str = ""

    @property
    def subject(self) -> str:
        return " ".join(f"{k}={v}" for k, v in sorted(self.labels.items()))

    @property
    def label(self) -> str:
        return f"{self.alertname} {self.subject}".strip()


@dataclass
class PlatformRow:
    platform: str
    figures: list[Figure]


@dataclass
class BrandSection:
    name: str
    competitor: bool
    headline: list[Figure]
    platforms: list[PlatformRow]
    charts: list[Series]
    sentiment: list[Figure]
    tops: dict[str, list[TopEntry]]


@dataclass
class NetworkRow:
    network: str
    figures: list[Figure]


@dataclass
class SiteSection:
    name: str
    headline: list[Figure]
    networks: list[NetworkRow]
    charts: list[Series]


@dataclass
class Report:
    source: str
    period: Period
    compare: Period | None
    compare_has_rows: bool
    brands: list[BrandSection]
    sites: list[SiteSection]
    alerts: list[AlertSpan]
    alert_chart: list[dict[str, Any]]
    campaign_rows: list[tuple[str, str, str, float]]  # (campaign, metric, other labels, sum)
    r2_metrics: list[str]
    unique_authors_window: str
    footnotes: list[str] = field(default_factory=list)
    pipeline: Any = None  # deploy.report.pipeline.Pipeline, filled by the command


def _brand_figures(rows: Rows, b: str, p: Period, uw: str, **extra: str) -> dict[str, float | None]:
    all_mentions = rows.total("mentions", "1m", p, **extra)
    mentions = rows.total("mentions", "1m", p, brand=b, **extra)
    reach = rows.total("potential_reach", "1m", p, brand=b, **extra)
    engagements = rows.total("engagements", "1m", p, brand=b, **extra)
    return {
        "mentions": mentions,
        "unique_authors": rows.total("unique_authors", uw, p, brand=b, **extra),
        "potential_reach": reach,
        "engagements": engagements,
        "engagement_rate": ratio(engagements, reach),
        "share_of_voice": ratio(mentions, all_mentions),
    }


def _headline(rows: Rows, b: str, p: Period, c: Period | None, uw: str) -> list[Figure]:
    now = _brand_figures(rows, b, p, uw)
    before = _brand_figures(rows, b, c, uw) if c else {}
    ua = "sum of hourly unique authors" if uw == "1h" else "sum of per-minute unique authors"
    figs = [
        Figure("Mentions", now["mentions"], before.get("mentions")),
        Figure(
            f"Unique authors ({ua})", now["unique_authors"], before.get("unique_authors"), note="¹"
        ),  # fmt: skip
        Figure(
            "Potential reach (sum over 1m windows)",
            now["potential_reach"],
            before.get("potential_reach"),
            note="²",
        ),  # fmt: skip
        Figure("Engagements", now["engagements"], before.get("engagements")),
        Figure("Engagement rate", now["engagement_rate"], before.get("engagement_rate"), "percent"),
        Figure("Amplification", None, None, "percent", note="³"),
        Figure("Share of voice", now["share_of_voice"], before.get("share_of_voice"), "share"),
    ]
    return figs


def _platform_rows(rows: Rows, b: str, p: Period, c: Period | None) -> list[PlatformRow]:
    out = []
    for plat in rows.label_values("platform", ("mentions", "engagements")):
        now = _brand_figures(rows, b, p, "1m", platform=plat)
        before = _brand_figures(rows, b, c, "1m", platform=plat) if c else {}
        if not (now["mentions"] or now["engagements"] or before.get("mentions") or before.get("engagements")):  # fmt: skip
            continue
        out.append(
            PlatformRow(
                plat,
                [
                    Figure("Mentions", now["mentions"], before.get("mentions")),
                    Figure("Engagements", now["engagements"], before.get("engagements")),
                    Figure(
                        "Engagement rate",
                        now["engagement_rate"],
                        before.get("engagement_rate"),
                        "percent",
                    ),  # fmt: skip
                    Figure(
                        "Share of voice",
                        now["share_of_voice"],
                        before.get("share_of_voice"),
                        "share",
                    ),  # fmt: skip
                ],
            )
        )
    return out


def _points(sums: dict[tuple[float, str], float]) -> list[dict[str, Any]]:
    return [{"t": iso(t), "series": s, "value": v} for (t, s), v in sorted(sums.items())]


def _ratio_points(
    num: dict[tuple[float, str], float], den: dict[tuple[float, str], float]
) -> list[dict[str, Any]]:
    return [
        {"t": iso(t), "series": s, "value": num.get((t, s), 0.0) / d}
        for (t, s), d in sorted(den.items())
        if d
    ]


def _sentiment(
    rows: Rows, b: str, p: Period, c: Period | None
) -> tuple[list[Figure], list[Series]]:
    if not rows.select("mentions_by_sentiment", "1m", p, brand=b):
        return [], []

    def counts(per: Period | None) -> dict[str, float]:
        if per is None:
            return {}
        return {s: rows.total("mentions_by_sentiment", "1m", per, brand=b, sentiment=s) for s in SENTIMENTS}  # fmt: skip

    now, before = counts(p), counts(c)

    def net(x: dict[str, float]) -> float | None:
        if not x:
            return None
        return ratio(x["positive"] - x["negative"], x["positive"] + x["negative"])

    figs = [Figure(f"Posts rated {s}", now[s], before.get(s)) for s in SENTIMENTS]
    figs.append(Figure("Net sentiment", net(now), net(before), "share"))
    step = bucket_seconds(p.until - p.since)
    by_label = rows.bucketed("mentions_by_sentiment", "1m", p, step, "sentiment", brand=b)
    pos = {(t, ""): v for (t, s), v in by_label.items() if s == "positive"}
    neg = {(t, ""): v for (t, s), v in by_label.items() if s == "negative"}
    den = {k: pos.get(k, 0.0) + neg.get(k, 0.0) for k in {*pos, *neg}}
    diff = {k: pos.get(k, 0.0) - neg.get(k, 0.0) for k in den}
    net_points = [dict(pt, series="net sentiment") for pt in _ratio_points(diff, den)]
    charts = [
        Series(
            f"{b}-sentiment",
            "Posts by sentiment",
            "posts",
            _points(by_label),
            "bar",
            step=step,
            order=list(SENTIMENTS),
        ),  # fmt: skip
    ]
    if net_points:
        charts.append(Series(f"{b}-net-sentiment", "Net sentiment: (positive − negative) / (positive + negative)", "net sentiment", net_points, percent=True, step=step))  # fmt: skip
    return figs, charts


def _tops(rows: Rows, b: str, p: Period) -> dict[str, list[TopEntry]]:
    out = {}
    for metric, key in TOP_METRICS.items():
        sums: dict[tuple[str, str], float] = defaultdict(float)
        hours: dict[tuple[str, str], int] = defaultdict(int)
        for r in rows.select(metric, "1h", p, brand=b):
            k = (r.labels.get(key, ""), r.labels.get("platform", ""))
            sums[k] += r.value
            hours[k] += 1
        if sums:
            best = sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_N]
            out[metric] = [TopEntry(w, plat, v, hours[(w, plat)]) for (w, plat), v in best]
    return out


def _brand(rows: Rows, b: str, competitor: bool, p: Period, c: Period | None, uw: str) -> BrandSection:  # fmt: skip
    step = bucket_seconds(p.until - p.since)
    mentions_all = rows.bucketed("mentions", "1m", p, step, "brand")
    total_per_bucket: dict[tuple[float, str], float] = defaultdict(float)
    for (t, _), v in mentions_all.items():
        total_per_bucket[(t, "")] += v
    sov_num = {(t, s): v for (t, s), v in mentions_all.items()}
    sov_den = {(t, s): total_per_bucket[(t, "")] for (t, s) in mentions_all}
    charts = [
        Series(
            f"{b}-sov",
            "Share of voice against the other tracked brands",
            "share of voice",
            _ratio_points(sov_num, sov_den),
            percent=True,
            step=step,
        ),  # fmt: skip
        Series(
            f"{b}-mentions",
            "Mentions per platform",
            "mentions",
            _points(rows.bucketed("mentions", "1m", p, step, "platform", brand=b)),
            "bar",
            step=step,
        ),  # fmt: skip
        Series(
            f"{b}-engagements",
            "Engagements per platform",
            "engagements",
            _points(rows.bucketed("engagements", "1m", p, step, "platform", brand=b)),
            "bar",
            step=step,
        ),  # fmt: skip
    ]
    eng = rows.bucketed("engagements", "1m", p, step, None, brand=b)
    reach = rows.bucketed("potential_reach", "1m", p, step, None, brand=b)
    charts.append(
        Series(
            f"{b}-er",
            "Engagement rate (engagements / potential reach)",
            "engagement rate",
            [dict(pt, series=b) for pt in _ratio_points(eng, reach)],
            percent=True,
            step=step,
        )  # fmt: skip
    )
    amp = [
        {"t": iso(r.start), "series": r.labels.get("platform", ""), "value": r.value}
        for r in sorted(rows.select("amplification", "1h", p, brand=b), key=lambda r: r.start)
    ]
    charts.append(
        Series(
            f"{b}-amplification",
            "Amplification per 1h window (reshares / posts), by platform",
            "amplification",
            amp,
            percent=True,
            step=HOUR,
        )  # fmt: skip
    )
    sentiment, sentiment_charts = _sentiment(rows, b, p, c)
    return BrandSection(
        b,
        competitor,
        _headline(rows, b, p, c, uw),
        _platform_rows(rows, b, p, c),
        [s for s in charts + sentiment_charts if s.points],
        sentiment,
        _tops(rows, b, p),
    )


def _site_figures(rows: Rows, s: str, p: Period, **net: str) -> dict[str, float | None]:
    pv = rows.total("pageviews", "1m", p, site=s) if not net else None
    refs = rows.total("social_referrals", "1m", p, site=s, **net)
    clicks = rows.total("share_clicks", "1m", p, site=s, **net)
    conv = rows.total("social_conversions", "1m", p, site=s, **net)
    paid = rows.total("paid_social_referrals", "1m", p, site=s, **net)
    refs_h = rows.total("social_referrals", "1h", p, site=s, **net)
    clicks_h = rows.total("share_clicks", "1h", p, site=s, **net)
    return {
        "pageviews": pv,
        "social_referrals": refs,
        "share_clicks": clicks,
        "share_rate": ratio(clicks, pv) if pv is not None else None,
        "referral_yield": ratio(refs_h, clicks_h),
        "social_conversions": conv,
        "social_conversion_rate": ratio(conv, refs),
        "social_conversion_value": rows.total("social_conversion_value", "1m", p, site=s, **net),
        "paid_social_referrals": paid,
        "paid_share": ratio(paid, refs),
    }


SITE_FIGURES = (
    ("pageviews", "Pageviews", "count", ""),
    ("social_referrals", "Social referrals", "count", ""),
    ("share_clicks", "Share clicks", "count", ""),
    ("share_rate", "Share rate (share clicks / pageviews)", "percent", ""),
    (
        "referral_yield",
        "Referral yield (social referrals / share clicks, 1h windows)",
        "percent",
        "⁴",
    ),  # fmt: skip
    ("social_conversions", "Social conversions", "count", ""),
    (
        "social_conversion_rate",
        "Social conversion rate (conversions / social referrals)",
        "percent",
        "",
    ),  # fmt: skip
    ("social_conversion_value", "Social conversion value", "money", ""),
    ("paid_social_referrals", "Paid social referrals", "count", ""),
    ("paid_share", "Paid share of social referrals", "share", ""),
)
R2_SITE = {"social_conversion_value", "paid_social_referrals", "paid_share"}


def _site(rows: Rows, s: str, p: Period, c: Period | None) -> SiteSection:
    has_r2 = {m: rows.has(m) for m in ("social_conversion_value", "paid_social_referrals")}

    def wanted(key: str) -> bool:
        if key == "paid_share":
            return has_r2["paid_social_referrals"]
        return key not in R2_SITE or has_r2[key]

    now = _site_figures(rows, s, p)
    before = _site_figures(rows, s, c) if c else {}
    headline = [Figure(n, now[k], before.get(k), kind, note) for k, n, kind, note in SITE_FIGURES if wanted(k)]  # fmt: skip
    networks = []
    for n in rows.label_values("network", ("social_referrals", "share_clicks", "social_conversions")):  # fmt: skip
        nf = _site_figures(rows, s, p, network=n)
        nb = _site_figures(rows, s, c, network=n) if c else {}
        if not any(nf[k] for k in ("social_referrals", "share_clicks", "social_conversions")):
            continue
        networks.append(NetworkRow(n, [Figure(name, nf[k], nb.get(k), kind, note)
                                       for k, name, kind, note in SITE_FIGURES
                                       if k not in ("pageviews", "share_rate") and wanted(k)]))  # fmt: skip
    step = bucket_seconds(p.until - p.since)
    pv = rows.bucketed("pageviews", "1m", p, step, None, site=s)
    refs = rows.bucketed("social_referrals", "1m", p, step, None, site=s)
    traffic = [dict(pt, series="pageviews") for pt in _points(pv)] + [
        dict(pt, series="social referrals") for pt in _points(refs)
    ]
    clicks_all = rows.bucketed("share_clicks", "1m", p, step, None, site=s)
    charts = [
        Series(f"{s}-traffic", "Pageviews and social referrals", "pageviews", traffic, step=step),
        Series(
            f"{s}-referrals",
            "Social referrals by network",
            "social referrals",
            _points(rows.bucketed("social_referrals", "1m", p, step, "network", site=s)),
            "bar",
            step=step,
        ),  # fmt: skip
        Series(
            f"{s}-shares",
            "Share clicks by network",
            "share clicks",
            _points(rows.bucketed("share_clicks", "1m", p, step, "network", site=s)),
            "bar",
            step=step,
        ),  # fmt: skip
        Series(
            f"{s}-share-rate",
            "Share rate (share clicks / pageviews)",
            "share rate",
            [dict(pt, series=s) for pt in _ratio_points(clicks_all, pv)],
            percent=True,
            step=step,
        ),  # fmt: skip
        Series(
            f"{s}-yield",
            "Referral yield per 1h window (social referrals / share clicks)",
            "referral yield",
            _ratio_points(
                rows.bucketed("social_referrals", "1h", p, HOUR, "network", site=s),
                rows.bucketed("share_clicks", "1h", p, HOUR, "network", site=s),
            ),
            percent=True,
            step=HOUR,
        ),  # fmt: skip
        Series(
            f"{s}-conversions",
            "Social conversions by network",
            "conversions",
            _points(rows.bucketed("social_conversions", "1m", p, step, "network", site=s)),
            "bar",
            step=step,
        ),  # fmt: skip
    ]
    if has_r2["paid_social_referrals"]:
        paid = rows.bucketed("paid_social_referrals", "1m", p, step, None, site=s)
        organic = {k: v - paid.get(k, 0.0) for k, v in refs.items()}
        charts.append(Series(f"{s}-paid", "Paid vs organic social referrals", "social referrals",
                             [dict(pt, series="paid") for pt in _points(paid)]
                             + [dict(pt, series="organic") for pt in _points(organic)], "bar", step=step))  # fmt: skip
    if has_r2["social_conversion_value"]:
        charts.append(Series(f"{s}-value", "Social conversion value by network", "value",
                             _points(rows.bucketed("social_conversion_value", "1m", p, step, "network", site=s)), "bar", step=step))  # fmt: skip
    return SiteSection(s, headline, networks, [c_ for c_ in charts if c_.points])


def _alerts(rows: Rows, p: Period) -> list[AlertSpan]:
    """Fire/resolve rows paired into spans; the spans that overlap the period."""
    changes = sorted(
        (r for r in rows.by.get(("alert", "event"), ()) if r.start < p.until),
        key=lambda r: r.start,
    )
    open_: dict[str, AlertSpan] = {}
    spans: list[AlertSpan] = []
    for r in changes:
        labels = {k: v for k, v in r.labels.items() if k != "alertname"}
        key = orjson.dumps(r.labels, option=orjson.OPT_SORT_KEYS).decode()
        name = r.labels.get("alertname", "alert")
        if r.value >= 1 and key not in open_:
            open_[key] = AlertSpan(name, labels, r.start, None)
            spans.append(open_[key])
        elif r.value < 1:
            span = open_.pop(key, None)
            if span is None:  # resolved with its firing before the rows begin
                span = AlertSpan(name, labels, None, None)
                spans.append(span)
            span.resolved = r.start
    kept = [
        s
        for s in spans
        if (s.fired is None or s.fired < p.until) and (s.resolved is None or s.resolved >= p.since)
    ]
    for s in kept:
        s.why = _why(rows, s)
    return kept


def _why(rows: Rows, s: AlertSpan) -> str:
    """The 15 minutes the rule looked at, against the trailing baseline, from 1m rows."""
    spec = ALERT_SERIES.get(s.alertname)
    if spec is None or s.fired is None:
        return ""
    metric, keys, extra = spec
    labels = {k: s.labels[k] for k in keys if k in s.labels} | extra
    t = s.fired
    x = rows.total(metric, "1m", Period(t - 15 * MINUTE, t), **labels)
    week = Period(t - 7 * 86400 - 15 * MINUTE, t - 7 * 86400)
    if rows.select(metric, "1m", week, **labels):
        base, what = rows.total(metric, "1m", week, **labels), "the same 15 minutes a week earlier"
    else:
        trailing = rows.total(metric, "1m", Period(t - 2 * HOUR - 15 * MINUTE, t - 15 * MINUTE), **labels)  # fmt: skip
        base, what = trailing / 8, "the mean per 15 minutes of the 2 hours before"
    name = metric.replace("_", " ") + (" (negative)" if extra else "")
    return f"{name} in the 15 minutes before: {x:,.0f}; {what}: {base:,.1f}"


def _alert_chart(spans: list[AlertSpan], p: Period) -> list[dict[str, Any]]:
    return [
        {
            "alert": s.label,
            "start": iso(max(s.fired if s.fired is not None else p.since, p.since)),
            "end": iso(min(s.resolved if s.resolved is not None else p.until, p.until)),
            "state": "resolved" if s.resolved is not None else "firing at the end",
        }
        for s in spans
    ]


def build(
    rows_list: list[R],
    source: str,
    period: Period,
    compare: Period | None,
    brands: dict[str, bool] | None = None,
) -> Report:
    """The whole report; ``brands``: name -> competitor, from the configuration when known."""
    rows = Rows(rows_list)
    if not rows.count_in(period):
        span = rows.span()
        held = f"the source holds rows from {iso(span[0])} to {iso(span[1])}" if span else "the source holds no window rows"  # fmt: skip
        raise ReportError(f"no results rows between {iso(period.since)} and {iso(period.until)} ({held})")  # fmt: skip
    known = rows.label_values("brand", ("mentions", "share_of_voice", "engagements"))
    brands = dict(brands or {})
    names = [b for b in brands if b in known] + [b for b in known if b not in brands]
    uw = "1h" if period.hour_aligned else "1m"
    compare_has_rows = compare is not None and rows.count_in(compare) > 0
    campaign_rows: dict[tuple[str, str, str], float] = defaultdict(float)
    for (metric, window), rs in rows.by.items():
        if window != "1m":
            continue
        for r in rs:
            if "campaign" in r.labels and period.holds(r):
                rest = " ".join(f"{k}={v}" for k, v in sorted(r.labels.items()) if k != "campaign")
                campaign_rows[(r.labels["campaign"], metric, rest)] += r.value
    spans = _alerts(rows, period)
    r2 = [m for m in ("mentions_by_sentiment", "net_sentiment", *TOP_METRICS, "paid_social_referrals", "social_conversion_value") if rows.has(m)]  # fmt: skip
    report = Report(
        source=source,
        period=period,
        compare=compare,
        compare_has_rows=compare_has_rows,
        brands=[_brand(rows, b, brands.get(b, False), period, compare, uw) for b in names],
        sites=[
            _site(rows, s, period, compare)
            for s in rows.label_values("site", ("pageviews", "social_referrals"))
        ],  # fmt: skip
        alerts=spans,
        alert_chart=_alert_chart(spans, period),
        campaign_rows=[(c, m, rest, v) for (c, m, rest), v in sorted(campaign_rows.items())],
        r2_metrics=r2,
        unique_authors_window=uw,
    )
    report.footnotes = footnotes(report)
    return report


def footnotes(report: Report) -> list[str]:
    ua = (
        "hourly (1h) window"
        if report.unique_authors_window == "1h"
        else "1m window (the period is not whole hours, so 1h windows do not fit it)"
    )
    return [
        "¹ Unique authors cannot be summed exactly from window rows: the figure adds up the "
        f"distinct authors of each {ua}, so an author active in several windows counts once "
        "per window. It is an upper bound of the period's distinct authors.",
        "² Potential reach is summed over 1m windows, as the dashboards' counter is: an author "
        "who mentions the brand in several minutes counts in each. Engagement rate is the "
        "period's engagements divided by this sum (both from 1m rows).",
        "³ The results rows carry amplification only as a per-window ratio (not its reshares "
        "and posts counts), and a period ratio is never an average of window ratios: the "
        "report shows it per 1h window in the chart instead of a period figure.",
        "⁴ Referral yield is defined on 1h windows (METRICS.md): sums of the 1h rows of "
        "social referrals and share clicks whose window lies within the period.",
        "Changes: counts and rates as a relative change against the comparison period; "
        "shares (share of voice, paid share, net sentiment) in percentage points. Windows "
        "that are still open (the last allowed lateness) are not final and not in the rows.",
        "Top posts, authors and links add up each entry's value over the 1h windows where it "
        "ranked in the top 10; an entry's hours outside a top 10 are not in the rows.",
    ]
