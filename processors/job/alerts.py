"""Stream-side alerts: records on ``<ns>.alerts`` and, live, Alertmanager's v2 API.

Both detectors (Prometheus rules and this one) reach the same Alertmanager, so routing,
grouping and inhibition are shared; ``source="stream"`` and ``namespace`` labels let
Alertmanager send replays (non-live namespaces) to a quiet receiver instead of paging.

Every alert of the rule table (``processors.catalogue.ALERTS``) is posted the same way: the
labels of its results row (alertname plus brand/platform or site/network), the severity of
its ``AlertDef``, and the annotations a notification needs (summary, description, the
value and baseline when the detector passes them, the runbook and the dashboard link).
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp
import orjson

from ingest.telemetry import gauge
from processors.catalogue import ALERTS, STREAM_ALERT_FIRING, AlertDef
from processors.core.results import Row

if TYPE_CHECKING:
    from processors.job.context import Context

log = logging.getLogger(__name__)

BY_NAME: dict[str, AlertDef] = {a.name: a for a in ALERTS}
# The gauge's label names after namespace; an alert fills the ones it has, the rest are "".
GAUGE_LABELS = tuple(n for n in STREAM_ALERT_FIRING.labels if n != "namespace")
# Grafana uids of the boards that show each kind of series. dashboards/ owns them (the floors
# forbid importing it here); tests/dashboards/test_notifications.py checks they agree.
BOARD_UIDS = {"brand": "ripple-smm", "site": "ripple-smo"}
RUNBOOK = "dashboards/runbook.md"


def alertmanager_url(ctx: Context) -> str | None:
    """``$RIPPLE_ALERTMANAGER_URL``; empty disables posting."""
    url = os.environ.get("RIPPLE_ALERTMANAGER_URL")
    if url is None:
        url = f"http://127.0.0.1:{ctx.config.stack.alertmanager_port}"
    return url.rstrip("/") or None


def dashboard_url(grafana: str, namespace: str, labels: dict[str, str]) -> str:
    """The board of the alert's series with its variables set to the alert's labels."""
    kind = "brand" if "brand" in labels else "site"
    q = {"var-namespace": namespace}
    q.update({f"var-{k}": labels[k] for k in ("brand", "platform", "site") if k in labels})
    return f"{grafana.rstrip('/')}/d/{BOARD_UIDS[kind]}?{urlencode(q)}"


def _where(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k != "alertname"}


def to_alertmanager(
    row: Row,
    namespace: str,
    live: bool,
    rule: tuple[float, float, float] | None = None,
    observed: tuple[float, float] | None = None,
    grafana: str = "http://127.0.0.1:3000",
) -> dict[str, Any]:
    """One Alertmanager alert from a results row (``"metric":"alert"``).

    ``rule`` is (factor, floor, resolve) of the alert; ``observed`` the detector's x and
    baseline at T when it has them (annotations ``value`` and ``baseline``)."""
    row_labels: dict[str, str] = row["labels"]
    name = row_labels["alertname"]
    defn = BY_NAME.get(name)
    severity = defn.severity if defn else "warning"
    labels = {
        **row_labels,
        "namespace": namespace,
        "source": "stream",
        # Replays never page, whatever the route: their severity says so too.
        "severity": severity if live else "info",
    }
    at = row["window_start"]
    factor, floor, resolve = rule or (0.0, 0.0, 0.0)
    where = _where(row_labels)
    if defn is not None:
        summary = defn.summary.format(**where, factor=factor)
        series = defn.series + "".join(f'{{{k}="{v}"}}' for k, v in defn.match)
        if defn.kind == "drop":
            how = f"fires below {factor:g}x the baseline when the baseline is at least {floor:g}; resolves above {resolve:g}x"
        else:
            how = f"fires at {factor:g}x the baseline or more when at least {floor:g}; resolves below {resolve:g}x"
        what = f"{series} in the 15 minutes before {at} (event time)"
    else:  # an alert this sink does not know yet still reaches people
        summary, how, what = f"{name} for {where}", "", f"event time {at}"
    annotations = {
        "summary": summary,
        "description": f"Stream-side {name}: {what}; {how}. Namespace {namespace}.".replace(
            "; .", "."
        ),
        "runbook_url": f"{RUNBOOK}#{name.lower()}",
        "dashboard_url": dashboard_url(grafana, namespace, where),
    }
    if observed is not None:
        x, baseline = observed
        annotations["value"] = f"{x:g}"
        annotations["baseline"] = f"{baseline:g}"
        if baseline > 0:
            annotations["ratio"] = f"{x / baseline:.0%}"
    alert: dict[str, Any] = {"labels": labels, "annotations": annotations, "startsAt": at}
    if row["value"] == 0:
        alert["endsAt"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return alert


class AlertSink:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.live = ctx.namespace == ctx.config.kafka.namespace
        self.url = alertmanager_url(ctx)
        self._firing = gauge(STREAM_ALERT_FIRING)
        self._topic: Any = None
        # Alertmanager resolves an alert it has not heard of for resolve_timeout (5m by
        # default), so firing alerts are re-posted (``refresh``) until they resolve.
        self.firing: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}

    def bind(self, topic: Any) -> None:
        self._topic = topic

    def _rule(self, name: str) -> tuple[float, float, float] | None:
        try:
            return self.ctx.config.alert_rule(name)
        except KeyError:
            return None

    async def publish(self, row: Row, observed: tuple[float, float] | None = None) -> None:
        """Send one alert transition (a results row); ``observed`` = (x, baseline) at T."""
        labels: dict[str, str] = row["labels"]
        self._firing.labels(self.ctx.namespace, *(labels.get(n, "") for n in GAUGE_LABELS)).set(
            row["value"]
        )
        if self._topic is not None:
            key = "|".join(v for k, v in sorted(labels.items()) if k != "alertname")
            await self._topic.send(
                key=f"{labels['alertname']}|{key}".encode(), value=orjson.dumps(row)
            )
        alert = to_alertmanager(
            row,
            self.ctx.namespace,
            self.live,
            rule=self._rule(labels["alertname"]),
            observed=observed,
            grafana=self.ctx.config.notifications.grafana_url,
        )
        key_ = tuple(sorted(labels.items()))
        if row["value"]:
            self.firing[key_] = alert
        else:
            self.firing.pop(key_, None)
        if self.url:
            await self._post([alert])

    async def refresh(self) -> None:
        if self.url and self.firing:
            await self._post(list(self.firing.values()))

    async def _post(self, alerts: list[dict[str, Any]]) -> None:
        try:
            timeout = aiohttp.ClientTimeout(total=3)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(
                    f"{self.url}/api/v2/alerts",
                    data=orjson.dumps(alerts),
                    headers={"Content-Type": "application/json"},
                ) as resp,
            ):
                if resp.status >= 300:
                    log.warning("alertmanager answered %s", resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("alertmanager unreachable at %s: %s", self.url, exc)
