"""The local stack's notification receiver: where Alertmanager's default route posts.

Alertmanager's webhook (payload version 4: ``status``, ``receiver``, ``alerts[]`` with
``status``, ``labels``, ``annotations``, ``startsAt``, ``endsAt``) posts one notification per
group; every alert in it becomes one readable text block appended to
``<state_dir>/logs/notifications.log``: what fired where, firing or resolved, the value against
its baseline (annotations ``value``/``baseline``/``ratio`` when the detector set them), the
summary, the runbook and the dashboard. So a local stack shows what a team would be paged
with, without Slack or mail. The last messages are also kept as JSON (``GET /messages``,
newest last) and as a small page (``GET /``).

Loopback only and without authentication: it is the local stack's stand-in for a team's
chat, not a service to expose. Run by ``ripple up``; by hand:
``python -m deploy.stack.webhook_receiver --port 19095 --log notifications.log``.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import os
import sys
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploy.stack.paths import StatePaths
from deploy.stack.services import ServiceSpec

MODULE = "deploy.stack.webhook_receiver"  # __name__ is "__main__" under -m
NAME = "webhook"  # its own log is logs/webhook.log; the notifications go to LOG_NAME
LOG_NAME = "notifications.log"
KEEP = 100
# Labels that say where an alert is, in this order ("acme/bluesky", "acme.com/x").
WHERE_KEYS = ("brand", "platform", "site", "network", "source", "stage")

log = logging.getLogger(__name__)


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def when(ts: str) -> str:
    """``2026-05-01 12:00:00 UTC`` from Alertmanager's RFC 3339 times; "" for Go's zero time
    (``0001-01-01T00:00:00Z``: a firing alert's endsAt); unparseable text as it came."""
    if not ts or ts.startswith("0001-"):
        return ""
    try:
        t = datetime.fromisoformat(ts)
    except ValueError:
        return ts
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def where(labels: dict[str, str]) -> str:
    """``acme/bluesky``; ``source="stream"`` names the detector, not a place, so it is left out,
    and a value said once is enough (IngestStalled's platform and source are the same)."""
    parts = [labels[k] for k in WHERE_KEYS if labels.get(k) and labels[k] != "stream"]
    return "/".join(dict.fromkeys(parts))


def message(alert: dict[str, Any], payload: dict[str, Any], received: datetime) -> dict[str, Any]:
    """One alert of a notification as a self-contained record (what ``/messages`` serves)."""
    labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
    annotations = {str(k): str(v) for k, v in (alert.get("annotations") or {}).items()}
    status = str(alert.get("status") or payload.get("status") or "firing")
    name = labels.get("alertname", "?")
    place = where(labels)
    msg: dict[str, Any] = {
        "received_at": received.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "status": status,
        "alertname": name,
        "where": place,
        "headline": " ".join(p for p in (name, place, status) if p),
        "detector": "stream" if labels.get("source") == "stream" else "prometheus",
        "labels": labels,
        "annotations": annotations,
        "starts_at": str(alert.get("startsAt") or ""),
        "ends_at": str(alert.get("endsAt") or ""),
        "receiver": str(payload.get("receiver") or ""),
    }
    msg["text"] = render(msg)
    return msg


def render(msg: dict[str, Any]) -> str:
    """The readable block of one message (ends with a blank line)."""
    a, labels = msg["annotations"], msg["labels"]
    severity = labels.get("severity")
    head = f"[{msg['status'].upper()}] {msg['alertname']}"
    if msg["where"]:
        head += f" {msg['where']}"
    extra = ", ".join(x for x in (severity, f"{msg['detector']} detector") if x)
    lines = [f"{head} ({extra}), received {when(msg['received_at'])}"]
    if a.get("summary"):
        lines.append(f"  summary:   {a['summary']}")
    if a.get("value"):
        value = f"  value:     {a['value']} against a baseline of {a.get('baseline', '?')}"
        if a.get("ratio"):
            value += f" ({a['ratio']} of it)"
        lines.append(value)
    pairs = " ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")
    lines.append(f"  where:     {pairs or '(no labels)'}")
    if since := when(msg["starts_at"]):
        lines.append(f"  since:     {since}")
    if msg["status"] == "resolved" and (ended := when(msg["ends_at"])):
        lines.append(f"  resolved:  {ended}")
    if a.get("runbook_url"):
        lines.append(f"  runbook:   {a['runbook_url']}")
    if a.get("dashboard_url"):
        lines.append(f"  dashboard: {a['dashboard_url']}")
    if a.get("description"):
        lines.append(f"  details:   {a['description']}")
    return "\n".join(lines) + "\n\n"


def messages_of(payload: Any, received: datetime | None = None) -> list[dict[str, Any]]:
    """Every alert of an Alertmanager webhook body; ValueError when it is not one."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise ValueError("not an Alertmanager webhook payload (no alerts list)")
    at = received or datetime.now(UTC)
    return [message(a, payload, at) for a in payload["alerts"] if isinstance(a, dict)]


class Inbox:
    """The last ``keep`` messages in memory and every one appended to the log file."""

    def __init__(self, path: Path, keep: int = KEEP) -> None:
        self.path = path
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self.received = 0

    def add(self, msgs: Iterable[dict[str, Any]]) -> int:
        msgs = list(msgs)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One write per notification, flushed on close: a reader never sees half a block.
        with self.path.open("a", encoding="utf-8") as f:
            f.write("".join(m["text"] for m in msgs))
        self.recent.extend(msgs)
        self.received += len(msgs)
        return len(msgs)


def page(inbox: Inbox) -> str:
    """GET /: the last messages, newest first, as preformatted text."""
    blocks = "\n".join(
        f"<pre class={html.escape(m['status'])}>{html.escape(m['text'].rstrip())}</pre>"
        for m in reversed(inbox.recent)
    )
    if not blocks:
        blocks = (
            "<p>No notification received yet. Alertmanager sends one a group_wait (30s) after "
            "an alert reaches it.</p>"
        )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="15">
<title>Ripple notifications</title>
<style>body{{font-family:sans-serif;margin:2em}} pre{{padding:.6em;border-left:4px solid #c33;
background:#f6f6f6;white-space:pre-wrap}} pre.resolved{{border-color:#3a3}}</style></head>
<body><h1>Ripple notifications</h1>
<p>What Alertmanager's default receiver sent to this local webhook: {inbox.received} alert(s)
since it started, newest first (the last {inbox.recent.maxlen} are kept). Text log:
{html.escape(str(inbox.path))}; JSON: <a href="messages">messages</a>.</p>
{blocks}
</body></html>
"""


def create_app(path: Path, keep: int = KEEP) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    inbox = Inbox(path, keep)

    async def notify(request: Request) -> Response:
        try:
            msgs = messages_of(json.loads(await request.body()))
        except ValueError as exc:  # JSONDecodeError is one
            return JSONResponse({"error": str(exc)}, status_code=400)
        inbox.add(msgs)
        for m in msgs:
            log.info("notification: %s", m["headline"])
        return JSONResponse({"received": len(msgs)})

    async def messages(request: Request) -> Response:
        return JSONResponse(list(inbox.recent))

    async def index(request: Request) -> Response:
        return HTMLResponse(page(inbox))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "received": inbox.received})

    app = Starlette(
        routes=[
            Route("/", notify, methods=["POST"]),
            Route("/", index, methods=["GET"]),
            Route("/messages", messages, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
    app.state.inbox = inbox
    return app


def spec(paths: StatePaths, port: int) -> ServiceSpec:
    """How the stack runs it (its stdout in logs/webhook.log, the notifications beside it)."""
    # The interpreter running `ripple up` is the venv's, as for every Ripple process.
    log_file = str(paths.logs / LOG_NAME)
    return ServiceSpec(
        name=NAME,
        argv=[sys.executable, "-m", MODULE, "--port", str(port), "--log", log_file],
        health_url=f"{url(port)}/healthz",
        metrics_port=port,  # where `ripple status` says it is (it serves no /metrics)
        ports=(port,),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=19095, help="port (stack.webhook_port, 19095)")
    state = os.environ.get("RIPPLE_STATE_DIR", ".ripple")
    parser.add_argument(
        "--log",
        type=Path,
        default=Path(state) / "logs" / LOG_NAME,
        help=f"text file the notifications are appended to ($RIPPLE_STATE_DIR/logs/{LOG_NAME})",
    )
    parser.add_argument(
        "--keep", type=int, default=KEEP, help=f"messages kept for /messages ({KEEP})"
    )
    args = parser.parse_args(argv)

    import uvicorn

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log.info("Alertmanager webhook on %s/, notifications appended to %s", url(args.port), args.log)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(args.log, args.keep),
            host=args.host,
            port=args.port,
            access_log=False,  # Alertmanager's posts are logged as notifications instead
            server_header=False,
            log_level="warning",
            lifespan="off",
        )
    )
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
