"""Notifications from [notifications]: a real Alertmanager with the generated configuration
sends a stream alert to Slack (a local HTTP server) and e-mail (a local aiosmtpd relay),
once per group, and sends the resolution."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import alertmanager, checks, generate
from dashboards.config import CONFIG, from_ripple_config
from deploy.stack.ports import free_port
from ingest.config import load_config
from processors.core.results import row
from processors.job.alerts import BOARD_UIDS, to_alertmanager

SECRET = "http://127.0.0.1:{port}/services/T000/B000/s3cr3t"


def _toml(tmp: Path, smtp_port: int) -> Path:
    path = tmp / "ripple.toml"
    path.write_text(f"""
[stack]
state_dir = "{tmp / "state"}"
[notifications]
grafana_url = "http://grafana.example:3000"
[notifications.slack]
channel = "#social-alerts"
webhook_url_env = "TEST_SLACK_WEBHOOK"
[notifications.email]
smarthost = "127.0.0.1:{smtp_port}"
from = "ripple@example.com"
to = ["social@example.com"]
require_tls = false
""")
    return path


def test_secrets_never_reach_the_generated_file(tmp_path: Path) -> None:
    toml = _toml(tmp_path, 2525)
    text = toml.read_text().replace(
        "require_tls = false", 'password_env = "TEST_SMTP_PW"\nusername = "u"'
    )
    toml.write_text(text)
    cfg = from_ripple_config(load_config(toml))
    env = {"TEST_SLACK_WEBHOOK": SECRET.format(port=1), "TEST_SMTP_PW": "hunter2"}
    written = alertmanager.write_secret_files(cfg, env)
    assert {p.name for p in written} == {"slack_webhook_url", "smtp_password"}
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in written)
    out = generate.outputs(cfg, root=tmp_path)[tmp_path / generate.ALERTMANAGER]
    assert "s3cr3t" not in out and "hunter2" not in out
    conf = yaml.safe_load(out)
    (receiver,) = [
        r for r in conf["receivers"] if r["name"] == CONFIG.alertmanager.default_receiver
    ]
    assert receiver["slack_configs"][0]["api_url_file"] == str(written[0])
    assert receiver["email_configs"][0]["auth_password_file"] == str(written[1])
    (tmp_path / "am.yml").write_text(out)
    assert checks._run(["amtool", "check-config", str(tmp_path / "am.yml")]) == []
    with pytest.raises(ValueError, match="TEST_SLACK_WEBHOOK"):
        alertmanager.secret_files(cfg, {})


def test_board_uids_of_the_stream_sink_are_the_dashboards() -> None:
    assert {"brand": CONFIG.grafana.uid("smm"), "site": CONFIG.grafana.uid("smo")} == BOARD_UIDS


class _Slack(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"path": self.path, "body": json.loads(body)})
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


class _Mails:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def receivers() -> Iterator[tuple[type[_Slack], _Mails, int, int]]:
    from aiosmtpd.controller import Controller

    slack = type("Slack", (_Slack,), {"received": []})
    http = ThreadingHTTPServer(("127.0.0.1", 0), slack)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    mails = _Mails()
    smtp = Controller(mails, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        yield slack, mails, http.server_port, smtp.port
    finally:
        smtp.stop()
        http.shutdown()


def _post(url: str, alerts: list[dict[str, Any]]) -> None:
    req = urllib.request.Request(
        f"{url}/api/v2/alerts", json.dumps(alerts).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


def _wait_for(cond: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


@pytest.mark.integration
def test_a_stream_alert_reaches_slack_and_email_once_then_its_resolution(
    tmp_path: Path, receivers: tuple[type[_Slack], _Mails, int, int]
) -> None:
    slack, mails, slack_port, smtp_port = receivers
    cfg = from_ripple_config(load_config(_toml(tmp_path, smtp_port)))
    alertmanager.write_secret_files(cfg, {"TEST_SLACK_WEBHOOK": SECRET.format(port=slack_port)})
    conf = yaml.safe_load(generate.outputs(cfg, root=tmp_path)[tmp_path / generate.ALERTMANAGER])
    # The stack's local webhook is not running here; short timers so the test is quick:
    # repeat_interval stays long, so a second notification of the same group is a bug.
    for r in conf["receivers"]:
        r["webhook_configs"] = [
            w for w in r.get("webhook_configs", []) if "19095" not in w["url"]
        ] or None
        if r["webhook_configs"] is None:
            del r["webhook_configs"]
    conf["route"].update(group_wait="1s", group_interval="2s", repeat_interval="1h")
    with running_alertmanager(conf, tmp_path) as url:
        labels = {"alertname": "SocialReferralDrop", "site": "acme.com", "network": "x"}
        fire = row("alert", "event", 1795000000, 1795000000, labels, 1)
        alert = to_alertmanager(
            fire, "ripple", True, (0.5, 20, 0.8), (7, 40), cfg.notifications.grafana_url
        )
        _post(url, [alert])
        _post(url, [alert])  # the sink re-posts firing alerts every minute (refresh)
        _wait_for(lambda: slack.received and mails.messages)
        time.sleep(5)  # two group intervals: nothing more may arrive
        _post(url, [alert])
        time.sleep(3)
        assert len(slack.received) == 1 and len(mails.messages) == 1
        msg = slack.received[0]
        assert msg["path"] == "/services/T000/B000/s3cr3t"
        body = msg["body"]
        assert body["channel"] == "#social-alerts"
        (att,) = body["attachments"]
        assert att["title"].startswith("[FIRING:1] SocialReferralDrop acme.com from x")
        for needed in ("Social referrals to acme.com from x dropped below 0.5x their baseline",
                       "Now 7 in the last 15m against a baseline of 40.",
                       "Runbook: dashboards/runbook.md#socialreferraldrop",
                       "Dashboard: http://grafana.example:3000/d/ripple-smo?var-namespace=ripple&var-site=acme.com"):  # fmt: skip
            assert needed in att["text"], (needed, att["text"])
        rcpt, mail = mails.messages[0]
        assert rcpt == ["social@example.com"]
        assert mail["Subject"].startswith("[FIRING:1] SocialReferralDrop acme.com from x")
        assert "Now 7 in the last 15m against a baseline of 40." in _text(mail)
        assert "Runbook: dashboards/runbook.md#socialreferraldrop" in _text(mail)
        # The detector resolves it: one resolution each.
        resolved = to_alertmanager(
            {**fire, "value": 0},
            "ripple",
            True,
            (0.5, 20, 0.8),
            None,
            cfg.notifications.grafana_url,
        )
        _post(url, [resolved])
        _wait_for(lambda: len(slack.received) == 2 and len(mails.messages) == 2)
        (att,) = slack.received[1]["body"]["attachments"]
        assert att["title"].startswith("[RESOLVED] SocialReferralDrop")
        assert "RESOLVED: Social referrals to acme.com" in att["text"]
        assert mails.messages[1][1]["Subject"].startswith("[RESOLVED] SocialReferralDrop")
        time.sleep(4)
        assert len(slack.received) == 2 and len(mails.messages) == 2


@contextmanager
def running_alertmanager(conf: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager with ``conf`` on a free port; its URL once it is ready (also used
    by tests/deploy/test_webhook_receiver.py)."""
    binary = shutil.which("prometheus-alertmanager")
    if binary is None:
        pytest.fail(
            "prometheus-alertmanager is not installed (Debian package prometheus-alertmanager)"
        )
    (tmp_path / "am.yml").write_text(yaml.safe_dump(conf))
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: _ready(url))
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2):
            return True
    except OSError:
        return False


def _text(mail: Any) -> str:
    parts = mail.walk() if mail.is_multipart() else [mail]
    plain = next(p for p in parts if p.get_content_type() == "text/plain")
    return str(plain.get_payload(decode=True).decode())
