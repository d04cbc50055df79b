"""What the demo shows in the terminal: where to look, and a short live summary read from
Prometheus' HTTP API, Alertmanager's v2 API and the stack's webhook receiver (``/messages``)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from deploy.stack.httpcheck import http_ok
from deploy.stack.paths import DEPLOY_DIR

GRAFANA_PROVISIONING = DEPLOY_DIR / "grafana" / "provisioning"


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def prom_query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    """Instant query; [] when Prometheus is unreachable or the query fails."""
    url = f"{prometheus}/api/v1/query?query={urllib.parse.quote(expr)}"
    try:
        reply = get_json(url)
    except (urllib.error.URLError, OSError, ValueError):
        return []
    if reply.get("status") != "success":
        return []
    result: list[dict[str, Any]] = reply["data"]["result"]
    return result


def by_label(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in result}


def am_alerts(alertmanager: str) -> list[dict[str, Any]]:
    """Alertmanager's current alerts (active, suppressed and unprocessed); [] if unreachable."""
    try:
        alerts: list[dict[str, Any]] = get_json(f"{alertmanager}/api/v2/alerts")
    except (urllib.error.URLError, OSError, ValueError):
        return []
    return alerts


def stream_alert(alerts: list[dict[str, Any]], alertname: str, brand: str, platform: str) -> bool:
    return any(
        a["labels"].get("alertname") == alertname
        and a["labels"].get("source") == "stream"
        and a["labels"].get("brand") == brand
        and a["labels"].get("platform") == platform
        for a in alerts
    )


def prometheus_ui(prometheus: str) -> str:
    """The base URL of Prometheus' web pages. Debian's package ships only the classic UI
    (``/classic/graph``, ``/classic/alerts``: its ``/alerts`` is a 404); Prometheus 3 has no
    ``/classic`` and serves ``/alerts`` itself."""
    return f"{prometheus}/classic" if http_ok(f"{prometheus}/classic/alerts") else prometheus


def graph_url(prometheus: str, expr: str, range_: str = "30m") -> str:
    query = urllib.parse.urlencode({"g0.expr": expr, "g0.tab": "0", "g0.range_input": range_})
    return f"{prometheus}/graph?{query}"


def alertmanager_lines(alertmanager: str) -> list[str]:
    """How to see Alertmanager's alerts. Debian's package ships no web UI (its page only says
    "does not include a web application"), so: amtool, and the v2 API in a browser."""
    return [
        f"  Alertmanager        amtool alert query --alertmanager.url={alertmanager}",
        f"                      (Debian's Alertmanager has no web UI; JSON: {alertmanager}/api/v2/alerts)",
    ]


def webhook_line(webhook: str, log: str | None = None) -> str:
    """Where Alertmanager's notifications land: the local webhook receiver's page."""
    text = f"; text: {log}" if log else ""
    return f"  notifications       {webhook}/   (what Alertmanager sent{text})"


def last_notification(webhook: str) -> str | None:
    """``EngagementDrop acme/bluesky firing, received 12:03:10 UTC: <summary>`` of the newest
    message the receiver holds; None when it holds none or is unreachable."""
    try:
        msgs = get_json(f"{webhook}/messages")
    except (urllib.error.URLError, OSError, ValueError):
        return None
    if not isinstance(msgs, list) or not msgs:
        return None
    m = msgs[-1]
    summary = m.get("annotations", {}).get("summary", "")
    received = str(m.get("received_at", ""))[11:19]
    text = f"{m.get('headline', '?')}, received {received} UTC"
    return f"{text}: {summary}" if summary else text


def where_to_look(
    prometheus: str,
    alertmanager: str,
    workers: list[str],
    collector: str | None,
    namespace: str,
    webhook: str | None = None,
) -> list[str]:
    mentions = f'sum by (brand) (brand_platform:ripple_smm_mentions:rate5m{{namespace="{namespace}"}}) * 60'
    drop = f'brand_platform:ripple_smm_engagements:increase15m{{namespace="{namespace}"}}'
    ui = prometheus_ui(prometheus)
    lines = [
        "Where to look:",
        f"  Prometheus graph    {graph_url(ui, mentions)}",
        f"  engagements (15m)   {graph_url(ui, drop)}",
        f"  Prometheus alerts   {ui}/alerts   (rules: {ui}/rules , targets: {ui}/targets )",
        *alertmanager_lines(alertmanager),
        *([webhook_line(webhook)] if webhook else []),
    ]
    lines += [f"  worker metrics      {w}/metrics" for w in workers]
    if collector:
        lines.append(f"  collector snippet   {collector}/ripple.js   (events: POST {collector}/e)")
    lines.append(
        f"  Grafana             provision {GRAFANA_PROVISIONING} (datasource + dashboards), "
        "or `ripple dashboards push --url URL`"
    )
    return lines


@dataclass
class Summary:
    brands: dict[str, tuple[float, float, float]] = field(
        default_factory=dict
    )  # mentions, reach, eng.
    referrals: dict[str, float] = field(default_factory=dict)
    events: float = 0.0
    watermark_age: float | None = None
    workers_up: tuple[int, int] = (0, 0)
    prom_firing: list[str] = field(default_factory=list)
    am_alerts: list[str] = field(default_factory=list)
    # The newest notification the webhook receiver got ("" none yet; None: no receiver asked).
    notification: str | None = None


def _alert_text(labels: dict[str, str]) -> str:
    """``EngagementDrop acme/bluesky``; ``source`` is the ingest source, except for stream
    alerts, where it says which detector raised it."""
    keys = ("brand", "platform", "site", "source", "stage")
    where = "/".join(labels[k] for k in keys if k in labels and labels[k] != "stream")
    return f"{labels.get('alertname', '?')} {where}".strip()


def _am_text(alert: dict[str, Any]) -> str:
    labels = alert["labels"]
    detector = "stream" if labels.get("source") == "stream" else "prometheus"
    since = str(alert.get("startsAt", ""))[11:16]
    return f"{_alert_text(labels)} [{alert['status']['state']}, {detector}, since {since} UTC]"


def fetch_summary(
    prometheus: str, alertmanager: str, namespace: str, webhook: str | None = None
) -> Summary:
    sel = f'{{namespace="{namespace}"}}'

    def per(metric: str, label: str) -> dict[str, float]:
        return by_label(prom_query(prometheus, f"sum by ({label}) ({metric}{sel})"), label)

    mentions = per("ripple_smm_mentions_total", "brand")
    reach = per("ripple_smm_potential_reach_total", "brand")
    eng = per("ripple_smm_engagements_total", "brand")
    s = Summary()
    s.brands = {b: (mentions[b], reach.get(b, 0.0), eng.get(b, 0.0)) for b in mentions}
    s.referrals = per("ripple_smo_social_referrals_total", "network")
    s.events = sum(
        by_label(prom_query(prometheus, f"sum(ripple_processor_events_total{sel})"), "").values()
    )
    age = prom_query(prometheus, f"time() - max(ripple_processor_watermark_timestamp_seconds{sel})")
    s.watermark_age = float(age[0]["value"][1]) if age else None
    up = prom_query(prometheus, 'up{job="ripple-worker"}')
    s.workers_up = (sum(int(float(r["value"][1])) for r in up), len(up))
    try:
        firing = get_json(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        firing = []
    s.prom_firing = sorted({_alert_text(a["labels"]) for a in firing if a["state"] == "firing"})
    s.am_alerts = sorted(_am_text(a) for a in am_alerts(alertmanager))
    if webhook:
        s.notification = last_notification(webhook) or ""
    return s


def _num(x: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.1f}{unit}"
    return f"{x:.0f}"


def render(s: Summary, namespace: str) -> list[str]:
    total = sum(m for m, _, _ in s.brands.values()) or 1.0
    lines = [
        f"Live summary, namespace {namespace!r}, {time.strftime('%H:%M:%S')} "
        "(counted since the workers started):",
        f"  {'brand':<10} {'mentions':>9} {'share':>6} {'reach':>8} {'engagements':>12}",
    ]
    for brand, (m, reach, eng) in sorted(s.brands.items(), key=lambda kv: -kv[1][0]):
        lines.append(
            f"  {brand:<10} {_num(m):>9} {m / total:>6.0%} {_num(reach):>8} {_num(eng):>12}"
        )
    if not s.brands:
        lines.append("  (no windows final yet)")
    refs = sorted(s.referrals.items(), key=lambda kv: -kv[1])
    lines.append(
        "  social referrals: " + (", ".join(f"{n} {_num(v)}" for n, v in refs) or "none yet")
    )
    age = "?" if s.watermark_age is None else f"{s.watermark_age:.0f}s"
    lines.append(
        f"  pipeline: {_num(s.events)} events processed, watermark {age} behind now, "
        f"workers up {s.workers_up[0]}/{s.workers_up[1]}"
    )
    lines.append("  firing in Prometheus:  " + ("; ".join(s.prom_firing) or "none"))
    lines.append("  in Alertmanager:       " + ("; ".join(s.am_alerts) or "none"))
    if s.notification is not None:
        # Alertmanager holds a new group for group_wait (30s) before it notifies.
        lines.append("  last notification:     " + (s.notification or "none yet"))
    return lines
