"""deploy/alertmanager.yml: amtool checks, routes, and inhibition in a real Alertmanager."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import checks, generate
from dashboards.config import CONFIG

AM = CONFIG.alertmanager


def _amtool_routes(*labels: str) -> list[str]:
    proc = subprocess.run(
        ["amtool", "config", "routes", "test", f"--config.file={generate.ALERTMANAGER_FILE}", *labels],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return proc.stdout.split()


def test_amtool_check_config() -> None:
    assert checks.amtool_check_config() == []


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        # Live Prometheus and stream alerts page.
        (["alertname=EngagementDrop", "namespace=ripple", "brand=acme", "platform=bluesky"], AM.default_receiver),
        (["alertname=EngagementDrop", "namespace=ripple", "source=stream", "brand=acme"], AM.default_receiver),
        # Ingest-side and worker alerts carry no namespace: they are live.
        (["alertname=IngestStalled", "source=bluesky", "platform=bluesky", "stage=ingest"], AM.default_receiver),
        (["alertname=WorkerDown", "job=ripple-worker"], AM.default_receiver),
        # Replays (any other namespace), from the stream or Prometheus, are quiet.
        (["alertname=EngagementDrop", "namespace=replay-2026-11", "source=stream"], AM.quiet_receiver),
        (["alertname=ProcessorLagHigh", "namespace=replay-2026-11", "topic=replay-2026-11.events"], AM.quiet_receiver),
    ],
)  # fmt: skip
def test_routes(labels: list[str], receiver: str) -> None:
    assert _amtool_routes(*labels) == [receiver]


def test_grouping_and_inhibition_are_declared() -> None:
    conf = yaml.safe_load(generate.ALERTMANAGER_FILE.read_text())
    assert {"alertname", "brand", "platform"} <= set(conf["route"]["group_by"])
    rule = conf["inhibit_rules"][0]
    assert rule["source_matchers"] == ['alertname="IngestStalled"']
    assert rule["equal"] == ["platform"]
    (receiver,) = [r for r in conf["receivers"] if r["name"] == AM.default_receiver]
    assert receiver["webhook_configs"][0]["url"] == AM.webhook_url


# --- a real Alertmanager with this configuration --------------------------------------------


class _Webhook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _free_port() -> int:
    from deploy.stack.ports import free_port

    return free_port()


def _wait(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, type[_Webhook]]]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.fail(
            "prometheus-alertmanager is not installed (Debian package prometheus-alertmanager)"
        )
    handler = type("Hook", (_Webhook,), {"received": []})
    hook = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    # The committed configuration, with the webhook on a free port and short group timers.
    conf = yaml.safe_load(generate.ALERTMANAGER_FILE.read_text())
    for r in conf["receivers"]:
        for w in r.get("webhook_configs", []):
            w["url"] = f"http://127.0.0.1:{hook.server_port}/"
    conf["route"].update(group_wait="1s", group_interval="1s")
    (tmp_path / "am.yml").write_text(yaml.safe_dump(conf))
    port = _free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(f"{url}/-/ready")
        yield url, handler
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        hook.shutdown()


def _post(url: str, alerts: list[dict[str, object]]) -> None:
    req = urllib.request.Request(
        f"{url}/api/v2/alerts", json.dumps(alerts).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


def _get_alerts(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


@pytest.mark.integration
def test_stall_inhibits_drops_of_its_platform_and_replays_stay_quiet(alertmanager) -> None:
    url, hook = alertmanager

    def drop(platform: str, namespace: str = "ripple", **extra: str) -> dict[str, object]:
        return {"labels": {"alertname": "EngagementDrop", "severity": "critical", "brand": "acme",
                           "platform": platform, "namespace": namespace, **extra}}  # fmt: skip

    _post(url, [
        {"labels": {"alertname": "IngestStalled", "severity": "critical", "source": "mastodon",
                    "platform": "mastodon", "stage": "ingest"}},
        drop("mastodon"),
        drop("mastodon", source="stream"),
        drop("bluesky"),
        drop("bluesky", namespace="replay-1", source="stream"),
    ])  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        state = {
            (a["labels"]["alertname"], a["labels"]["platform"], a["labels"].get("namespace", ""),
             a["labels"].get("source", "")): a["status"]
            for a in _get_alerts(url)
        }  # fmt: skip
        notified = {
            (a["labels"]["alertname"], a["labels"]["platform"], a["labels"].get("namespace", ""))
            for n in hook.received for a in n["alerts"]
        }  # fmt: skip
        if len(state) == 5 and len(notified) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    # Drop alerts (Prometheus and stream) of the stalled platform are inhibited, others not.
    assert state[("EngagementDrop", "mastodon", "ripple", "")]["inhibitedBy"]
    assert state[("EngagementDrop", "mastodon", "ripple", "stream")]["inhibitedBy"]
    assert not state[("EngagementDrop", "bluesky", "ripple", "")]["inhibitedBy"]
    # The webhook got the stall and the live bluesky drop, not the inhibited or replayed ones.
    time.sleep(2)  # any late notification would arrive by now
    notified = {
        (a["labels"]["alertname"], a["labels"]["platform"], a["labels"].get("namespace", ""))
        for n in hook.received for a in n["alerts"]
    }  # fmt: skip
    assert notified == {("IngestStalled", "mastodon", ""), ("EngagementDrop", "bluesky", "ripple")}
