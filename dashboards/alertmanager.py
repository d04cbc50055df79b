"""``deploy/alertmanager.yml``: routing, grouping and inhibition for Ripple's alerts.

- grouped by alertname and brand/platform (and namespace, site), so one notification covers
  one detector on one brand and platform;
- alerts from any namespace but the live one (replays, tests; both Prometheus and stream
  alerts carry ``namespace``) go to a quiet receiver that notifies no one;
- ``IngestStalled`` inhibits the drop alerts of the same platform (website stalls inhibit
  ``SocialReferralDrop``), and ``WorkerDown`` inhibits drop alerts and processor-side stalls:
  the real cause pages, its symptoms do not.
"""

from __future__ import annotations

from pathlib import Path

from dashboards.config import CONFIG, Config
from dashboards.rules import DETECTORS
from ingest.config import read_secret

# A good alert says what (summary), where (labels), how much (value against baseline), what to
# do (runbook) and where to look (dashboard). Alertmanager's Go templates, inline.
TITLE = (
    '[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}]'
    " {{ .CommonLabels.alertname }}"
    "{{ with .CommonLabels.brand }} {{ . }}{{ end }}{{ with .CommonLabels.platform }} on {{ . }}{{ end }}"
    "{{ with .CommonLabels.site }} {{ . }}{{ end }}{{ with .CommonLabels.network }} from {{ . }}{{ end }}"
)
TEXT = (
    "{{ range .Alerts }}"
    '{{ if eq .Status "resolved" }}RESOLVED: {{ end }}{{ .Annotations.summary }}\n'
    "{{ if .Annotations.value }}Now {{ .Annotations.value }} in the last 15m against a baseline"
    " of {{ .Annotations.baseline }}.\n{{ end }}"
    "{{ .Annotations.description }}\n"
    "Where: {{ range .Labels.SortedPairs }}{{ .Name }}={{ .Value }} {{ end }}\n"
    'Since: {{ .StartsAt }}{{ if eq .Status "resolved" }}, resolved {{ .EndsAt }}{{ end }}\n'
    "Runbook: {{ .Annotations.runbook_url }}\n"
    "{{ with .Annotations.dashboard_url }}Dashboard: {{ . }}\n{{ end }}\n"
    "{{ end }}"
)


def secret_path(cfg: Config, name: str) -> Path:
    root = Path(cfg.notifications.secrets_dir)
    if not root.is_absolute():
        root = Path(cfg.state_dir).resolve() / root
    return root / name


def secret_files(cfg: Config, env: dict[str, str] | None = None) -> dict[Path, str]:
    """Secret files to write for channels that name an environment variable (``*_env``): the
    generated configuration points at them, so no secret is ever in alertmanager.yml."""
    n = cfg.notifications
    wanted = []
    if n.slack and n.slack.webhook_url_env and not n.slack.webhook_url_file:
        wanted.append((n.slack.webhook_url_env, "slack_webhook_url"))
    if n.email and n.email.password_env and not n.email.password_file:
        wanted.append((n.email.password_env, "smtp_password"))
    out = {}
    for var, file in wanted:
        value = read_secret(var, env)
        if not value:
            raise ValueError(f"notifications: ${var} (or ${var}_FILE) is not set")
        out[secret_path(cfg, file)] = value + "\n"
    return out


def write_secret_files(cfg: Config, env: dict[str, str] | None = None) -> list[Path]:
    written = []
    for path, value in secret_files(cfg, env).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(value)
        written.append(path)
    return written


def _channels(cfg: Config) -> dict[str, list[dict[str, object]]]:
    n = cfg.notifications
    out: dict[str, list[dict[str, object]]] = {}
    if n.slack:
        file = n.slack.webhook_url_file or str(secret_path(cfg, "slack_webhook_url"))
        slack: dict[str, object] = {
            "api_url_file": file,
            "send_resolved": True,
            "title": TITLE,
            "text": TEXT,
        }
        if n.slack.channel:
            slack["channel"] = n.slack.channel
        out["slack_configs"] = [slack]
    if n.email:
        e = n.email
        email: dict[str, object] = {
            "to": ", ".join(e.to),
            "from": e.sender,
            "smarthost": e.smarthost,
            "require_tls": e.require_tls,
            "send_resolved": True,
            "headers": {"Subject": TITLE},
            "text": TEXT,
        }
        if e.username:
            email["auth_username"] = e.username
        if e.password_env or e.password_file:
            email["auth_password_file"] = e.password_file or str(secret_path(cfg, "smtp_password"))
        out["email_configs"] = [email]
    if n.webhook:
        out["webhook_configs"] = [{"url": n.webhook.url, "send_resolved": True}]
    return out


def _q(name: str, op: str, value: str) -> str:
    return f'{name}{op}"{value}"'


def config(cfg: Config = CONFIG) -> dict[str, object]:
    am = cfg.alertmanager
    drops = [d.alert for d in DETECTORS if d.alert.kind == "drop"]
    platform_drops = "|".join(a.name for a in drops if a.stall_platform is None)
    site_drops = "|".join(a.name for a in drops if a.stall_platform is not None)
    all_drops = "|".join(a.name for a in drops)
    return {
        "route": {
            "receiver": am.default_receiver,
            "group_by": list(am.group_by),
            "group_wait": am.group_wait,
            "group_interval": am.group_interval,
            "repeat_interval": am.repeat_interval,
            "routes": [
                {
                    # An absent namespace (ingest-side alerts, WorkerDown) is live.
                    "receiver": am.quiet_receiver,
                    "matchers": [
                        _q("namespace", "=~", ".+"),
                        _q("namespace", "!=", cfg.live_namespace),
                    ],
                },
            ],
        },
        "inhibit_rules": [
            {
                "source_matchers": [_q("alertname", "=", "IngestStalled")],
                "target_matchers": [_q("alertname", "=~", platform_drops)],
                "equal": ["platform"],
            },
            {
                "source_matchers": [
                    _q("alertname", "=", "IngestStalled"),
                    _q("platform", "=", cfg.stall.web_source),
                ],
                "target_matchers": [_q("alertname", "=~", site_drops)],
            },
            {
                "source_matchers": [_q("alertname", "=", "WorkerDown")],
                "target_matchers": [_q("alertname", "=~", all_drops)],
            },
            {
                "source_matchers": [_q("alertname", "=", "WorkerDown")],
                "target_matchers": [
                    _q("alertname", "=", "IngestStalled"),
                    _q("stage", "=", "processor"),
                ],
            },
        ],
        "receivers": [
            {
                "name": am.default_receiver,
                **_receiver(cfg),
            },
            {"name": am.quiet_receiver},
        ],
    }


def _receiver(cfg: Config) -> dict[str, object]:
    """The stack's local webhook, plus the TOML's channels ([notifications])."""
    local = {"url": cfg.alertmanager.webhook_url, "send_resolved": True}
    channels = _channels(cfg)
    hooks = [local, *channels.pop("webhook_configs", [])]
    return {"webhook_configs": hooks, **channels}
