"""Stream-side alerts: records on ``<ns>.alerts`` and, live, Alertmanager's v2 API.

Both detectors (Prometheus rules and this one) reach the same Alertmanager, so routing,
grouping and inhibition are shared; ``source="stream"`` and ``namespace`` labels let
Alertmanager send replays (non-live namespaces) to a quiet receiver instead of paging.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from ingest.telemetry import gauge
from processors.metrics import STREAM_ALERT_FIRING
from processors.results import Row

if TYPE_CHECKING:
    from processors.context import Context

log = logging.getLogger(__name__)


def alertmanager_url(ctx: Context) -> str | None:
    """``$RIPPLE_ALERTMANAGER_URL``; empty disables posting."""
    url = os.environ.get("RIPPLE_ALERTMANAGER_URL")
    if url is None:
        url = f"http://127.0.0.1:{ctx.config.stack.alertmanager_port}"
    return url.rstrip("/") or None


def to_alertmanager(row: Row, namespace: str, live: bool) -> dict[str, Any]:
    labels = {
        **row["labels"],
        "namespace": namespace,
        "source": "stream",
        "severity": "warning" if live else "info",
    }
    at = row["window_start"]
    alert: dict[str, Any] = {
        "labels": labels,
        "annotations": {
            "summary": f"Engagements for {labels['brand']} on {labels['platform']} dropped below half their baseline",
            "description": f"Stream-side EngagementDrop (event time {at}) in namespace {namespace}.",
            "runbook_url": "dashboards/runbook.md#engagementdrop",
        },
        "startsAt": at,
    }
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
        self.firing: dict[tuple[str, str], dict[str, Any]] = {}

    def bind(self, topic: Any) -> None:
        self._topic = topic

    async def publish(self, row: Row) -> None:
        labels = row["labels"]
        self._firing.labels(
            self.ctx.namespace, labels["alertname"], labels["brand"], labels["platform"]
        ).set(row["value"])
        if self._topic is not None:
            await self._topic.send(
                key=f"{labels['brand']}|{labels['platform']}".encode(), value=orjson.dumps(row)
            )
        alert = to_alertmanager(row, self.ctx.namespace, self.live)
        key = (labels["brand"], labels["platform"])
        if row["value"]:
            self.firing[key] = alert
        else:
            self.firing.pop(key, None)
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
