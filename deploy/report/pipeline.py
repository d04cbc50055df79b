"""The pipeline section (events in, dead letters, late events) and the campaign counters:
these are Prometheus counters, not results rows, so they come from Prometheus' HTTP API
when it is reachable and are "not available" otherwise."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from deploy.report.figures import Period

QUERIES = (
    ("Events in, by source", ("source",), "ripple_processor_events_total"),
    ("Dead letters, by reason", ("reason",), "ripple_processor_dead_letters_total"),
    (
        "Late events, by window and reason",
        ("window", "reason"),
        "ripple_processor_late_events_total",
    ),  # fmt: skip
)
CAMPAIGN_QUERIES = (
    (
        "Campaign mentions, by campaign and platform",
        ("campaign", "platform"),
        "ripple_smm_campaign_mentions_total",
    ),  # fmt: skip
    (
        "Campaign pageviews, by site and campaign",
        ("site", "campaign"),
        "ripple_smo_campaign_pageviews_total",
    ),  # fmt: skip
)


class Unreachable(Exception):
    pass


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Pipeline:
    available: bool
    note: str
    tables: list[Table] = field(default_factory=list)
    campaigns: list[Table] = field(default_factory=list)


def query(prometheus: str, expr: str, at: float, timeout: float = 5.0) -> list[dict]:  # type: ignore[type-arg]
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})  # fmt: skip
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            reply = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise Unreachable(str(getattr(exc, "reason", exc))) from None
    if reply.get("status") != "success":
        raise Unreachable(reply.get("error", "query failed"))
    return list(reply["data"]["result"])


def _table(prometheus: str, title: str, by: tuple[str, ...], metric: str, ns: str, p: Period, at: float) -> Table:  # fmt: skip
    rng = max(60, int(at - p.since))
    expr = f'sum by ({", ".join(by)}) (increase({metric}{{namespace="{ns}"}}[{rng}s]))'
    result = query(prometheus, expr, at)
    rows = sorted(
        ([*(r["metric"].get(k, "") for k in by), f"{float(r['value'][1]):,.0f}"] for r in result),
        key=lambda row: row[:-1],
    )
    return Table(title, [*by, "count"], rows)


def fetch(prometheus: str | None, namespace: str | None, period: Period) -> Pipeline:
    if not prometheus:
        return Pipeline(False, "not available: no Prometheus was given (--prometheus none)")
    if not namespace:
        return Pipeline(False, "not available: the results file names no namespace (give --pipeline-namespace)")  # fmt: skip
    at = min(period.until, time.time())
    try:
        tables = [_table(prometheus, t, by, m, namespace, period, at) for t, by, m in QUERIES]
        campaigns = [_table(prometheus, t, by, m, namespace, period, at) for t, by, m in CAMPAIGN_QUERIES]  # fmt: skip
    except Unreachable as exc:
        return Pipeline(False, f"not available: Prometheus at {prometheus} did not answer ({exc})")
    from processors.core.windows import iso

    note = (
        f"Prometheus at {prometheus}, namespace {namespace!r}: increase of the counters from "
        f"{iso(period.since)} to {iso(at)}, by processing time (events count when they were "
        "processed, e.g. a replay when it ran, not at their event times)"
    )
    return Pipeline(True, note, tables, campaigns)
