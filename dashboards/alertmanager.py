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

from dashboards.config import CONFIG, Config
from dashboards.rules import DETECTORS


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
                "webhook_configs": [{"url": am.webhook_url, "send_resolved": True}],
            },
            {"name": am.quiet_receiver},
        ],
    }
