"""The local stack's webhook receiver (deploy/stack/webhook_receiver.py): the readable text of
Alertmanager's webhook payloads, and a real Alertmanager with the generated configuration
notifying it once per alert group."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dashboards import generate
from dashboards.config import CONFIG, from_ripple_config
from deploy.demo_view import last_notification
from deploy.stack import alertmanager, process, supervisor, webhook_receiver
from deploy.stack.paths import StatePaths
from deploy.stack.ports import free_port
from ingest.config import load_config
from processors.core.results import row
from processors.job.alerts import to_alertmanager
from tests.dashboards.test_notifications import _post, _wait_for, running_alertmanager

# What Alertmanager 0.25 posts (webhook payload version 4): a stream EngagementDrop as
# processors/job/alerts.py sends it, and a resolved Prometheus-rule alert of the same group.
PAYLOAD: dict[str, Any] = {
    "receiver": "ripple-webhook",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "EngagementDrop",
                "brand": "acme",
                "namespace": "ripple",
                "platform": "bluesky",
                "severity": "critical",
                "source": "stream",
            },  # fmt: skip
            "annotations": {
                "summary": "Engagements on acme's bluesky posts dropped below 0.5x their baseline",
                "description": "Stream-side EngagementDrop: ... Namespace ripple.",
                "runbook_url": "dashboards/runbook.md#engagementdrop",
                "dashboard_url": "http://127.0.0.1:3000/d/ripple-smm?var-namespace=ripple&var-brand=acme&var-platform=bluesky",
                "value": "7",
                "baseline": "40",
                "ratio": "18%",
            },
            "startsAt": "2026-12-02T03:15:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": "3b1f6c4f0d6a2c1e",
        },
        {
            "status": "resolved",
            "labels": {
                "alertname": "EngagementDrop",
                "brand": "acme",
                "namespace": "ripple",
                "platform": "bluesky",
                "severity": "critical",
            },  # fmt: skip
            "annotations": {
                "summary": "Engagements on acme's bluesky posts dropped",
                "runbook_url": "dashboards/runbook.md#engagementdrop",
            },  # fmt: skip
            "startsAt": "2026-12-02T03:16:05.123456789Z",
            "endsAt": "2026-12-02T03:40:00.5+00:00",
            "generatorURL": "http://127.0.0.1:19090/graph?g0.expr=...",
            "fingerprint": "9d2a11b0c4e5f6a7",
        },
    ],
    "groupLabels": {
        "alertname": "EngagementDrop",
        "brand": "acme",
        "namespace": "ripple",
        "platform": "bluesky",
    },  # fmt: skip
    "commonLabels": {"alertname": "EngagementDrop", "brand": "acme"},
    "commonAnnotations": {},
    "externalURL": "http://127.0.0.1:19094",
    "version": "4",
    "groupKey": '{}:{alertname="EngagementDrop", brand="acme"}',
    "truncatedAlerts": 0,
}


def test_each_alert_becomes_one_readable_block() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 12, 2, 3, 41, 7, tzinfo=UTC)
    firing, resolved = webhook_receiver.messages_of(PAYLOAD, at)
    assert firing["headline"] == "EngagementDrop acme/bluesky firing"
    assert firing["text"] == (
        "[FIRING] EngagementDrop acme/bluesky (critical, stream detector), received 2026-12-02 03:41:07 UTC\n"
        "  summary:   Engagements on acme's bluesky posts dropped below 0.5x their baseline\n"
        "  value:     7 against a baseline of 40 (18% of it)\n"
        "  where:     brand=acme namespace=ripple platform=bluesky severity=critical source=stream\n"
        "  since:     2026-12-02 03:15:00 UTC\n"
        "  runbook:   dashboards/runbook.md#engagementdrop\n"
        "  dashboard: http://127.0.0.1:3000/d/ripple-smm?var-namespace=ripple&var-brand=acme&var-platform=bluesky\n"
        "  details:   Stream-side EngagementDrop: ... Namespace ripple.\n\n"
    )
    # Without value/baseline annotations there is no value line; a resolution says when.
    assert resolved["headline"] == "EngagementDrop acme/bluesky resolved"
    lines = resolved["text"].splitlines()
    assert lines[0].startswith("[RESOLVED] EngagementDrop acme/bluesky (critical, prometheus")
    assert "  since:     2026-12-02 03:16:05 UTC" in lines
    assert "  resolved:  2026-12-02 03:40:00 UTC" in lines
    assert not any(x.startswith("  value:") for x in lines)
    stalled = {"alertname": "IngestStalled", "platform": "x", "source": "x", "stage": "ingest"}
    assert webhook_receiver.where(stalled) == "x/ingest"
    with pytest.raises(ValueError, match="no alerts list"):
        webhook_receiver.messages_of({"status": "firing"})


async def test_the_app_appends_the_log_and_keeps_the_last_messages(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "notifications.log"
    app = webhook_receiver.create_app(log, keep=3)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hook") as client:
        assert (await client.get("/")).status_code == 200  # the page before any notification
        assert (await client.post("/", content=b"{not json")).status_code == 400
        assert (await client.post("/", json={"status": "firing"})).status_code == 400
        assert not log.exists()
        for _ in range(2):
            reply = await client.post("/", json=PAYLOAD)
            assert reply.status_code == 200 and reply.json() == {"received": 2}
        text = log.read_text()
        assert text.count("[FIRING] EngagementDrop acme/bluesky") == 2
        assert text.count("[RESOLVED] EngagementDrop acme/bluesky") == 2
        msgs = (await client.get("/messages")).json()
        assert [m["status"] for m in msgs] == ["resolved", "firing", "resolved"]  # the last 3
        page = (await client.get("/")).text
        assert "Engagements on acme&#x27;s bluesky posts" in page  # escaped, newest first
        assert page.index("[RESOLVED]") < page.index("[FIRING]")
        assert (await client.get("/healthz")).json() == {"status": "ok", "received": 4}


def test_the_stack_points_alertmanager_at_its_webhook_port(tmp_path: Path) -> None:
    default = alertmanager.write_config(StatePaths.at(tmp_path / "a"))
    assert default.read_text() == alertmanager.PROJECT_CONFIG.read_text()
    moved = yaml.safe_load(
        alertmanager.write_config(StatePaths.at(tmp_path / "b"), 12345).read_text()
    )
    (receiver,) = [
        r for r in moved["receivers"] if r["name"] == CONFIG.alertmanager.default_receiver
    ]
    assert receiver["webhook_configs"] == [
        {"url": "http://127.0.0.1:12345/", "send_resolved": True}
    ]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


@pytest.mark.integration
def test_alertmanager_notifies_the_receiver_once_then_the_resolution(tmp_path: Path) -> None:
    port = free_port()
    toml = tmp_path / "ripple.toml"
    toml.write_text(f'[stack]\nstate_dir = "{tmp_path / "state"}"\nwebhook_port = {port}\n')
    cfg = from_ripple_config(load_config(toml))
    conf = yaml.safe_load(generate.outputs(cfg, root=tmp_path)[tmp_path / generate.ALERTMANAGER])
    (receiver,) = [r for r in conf["receivers"] if r["name"] == cfg.alertmanager.default_receiver]
    assert receiver["webhook_configs"] == [
        {"url": f"http://127.0.0.1:{port}/", "send_resolved": True}
    ]
    # Short timers so the test is quick; repeat_interval stays long, so a second
    # notification of the same group is a bug.
    conf["route"].update(group_wait="1s", group_interval="2s", repeat_interval="1h")

    paths = StatePaths.at(tmp_path / "state")
    spec = webhook_receiver.spec(paths, port)  # how `ripple up` runs it
    log = paths.logs / webhook_receiver.LOG_NAME
    hook = webhook_receiver.url(port)
    supervisor.start(paths, spec)
    try:
        supervisor.wait_healthy(paths, spec, 30)
        with running_alertmanager(conf, tmp_path) as am:
            # As the stream detector's sink (processors/job/alerts.py AlertSink) posts it.
            start = (time.time() - 1200) // 60 * 60
            labels = {"alertname": "EngagementDrop", "brand": "acme", "platform": "bluesky"}
            fire = row("alert", "event", start, start, labels, 1)
            alert = to_alertmanager(fire, "ripple", True, (0.5, 20, 0.8), (7, 40))
            _post(am, [alert])
            _post(am, [alert])  # the sink re-posts firing alerts every minute (refresh)
            _wait_for(lambda: log.exists() and "[FIRING]" in log.read_text())
            time.sleep(5)  # two group intervals: nothing more may arrive
            _post(am, [alert])
            time.sleep(3)
            text = log.read_text()
            assert (
                text.count("[FIRING] EngagementDrop acme/bluesky (critical, stream detector)") == 1
            ), text
            for needed in ("  summary:   Engagements", "  value:     7 against a baseline of 40 (18% of it)",
                           "  runbook:   dashboards/runbook.md#engagementdrop",
                           "  dashboard: http://127.0.0.1:3000/d/ripple-smm?var-namespace=ripple&var-brand=acme"):  # fmt: skip
                assert needed in text, (needed, text)
            resolved = to_alertmanager({**fire, "value": 0}, "ripple", True, (0.5, 20, 0.8))
            _post(am, [resolved])
            _wait_for(lambda: "[RESOLVED]" in log.read_text())
            time.sleep(3)
        text = log.read_text()
        assert text.count("[FIRING]") == 1 and text.count("[RESOLVED]") == 1, text
        assert "  resolved:  " in text.split("[RESOLVED]")[1]
        msgs = json.loads(_get(f"{hook}/messages"))
        assert [m["headline"] for m in msgs] == [
            "EngagementDrop acme/bluesky firing",
            "EngagementDrop acme/bluesky resolved",
        ]
        assert msgs[0]["receiver"] == "ripple-webhook"
        assert "[RESOLVED] EngagementDrop acme/bluesky" in _get(f"{hook}/")
        # What `ripple demo` prints from it.
        last = last_notification(hook) or ""
        assert last.startswith("EngagementDrop acme/bluesky resolved, received "), last
    finally:
        process.stop(paths, webhook_receiver.NAME)
