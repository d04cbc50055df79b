"""The one configuration the dashboards, rules and alerts are generated from.

Metric names and labels come from ``processors.catalogue.CATALOGUE``; everything else that a
generated file depends on (selectors, thresholds, windows, uids, receivers) is here, so a
change of threshold is one edit followed by ``ripple dashboards generate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ingest.config import ALERT_DEFAULTS, NotificationSettings, StackSettings
from ingest.config import Config as RippleConfig


@dataclass(frozen=True)
class CampaignDates:
    name: str
    brand: str
    start: str | None
    end: str | None


@dataclass(frozen=True)
class BaselineConfig:
    """METRICS.md "Spikes and drops": the rule shape all four alerts of ``ALERTS`` share.
    Their factors, floors and resolve factors are ``Config.rules`` (``[alerts.<name>]``)."""

    window: str = "15m"  # x: the series in [T-15m, T)
    seasonal_offset: str = "1w"  # B: the same 15 minutes one week earlier, when the history exists
    trailing_range: str = "2h"  # else the mean per 15m over [T-2h15m, T-15m) ...
    trailing_periods: int = 8  # ... = increase over 2h, offset 15m, divided by 8
    # A drop is held back while its platform was stalled (no event for this long) at any
    # point of the last window: a stall is IngestStalled, not a drop.
    hold_stale_seconds: int = 300


@dataclass(frozen=True)
class StallConfig:
    """When a source counts as stalled (IngestStalled; no drop alert on a stalled platform)."""

    threshold_seconds: int = 600  # newest event older than this: stalled
    # Quiet sources get their own threshold: a feed that posts hourly, or X's filtered stream
    # that only carries matching posts, is not stalled after 10 quiet minutes.
    per_source_seconds: tuple[tuple[str, int], ...] = (
        ("x", 3600),
        ("hackernews", 3600),
        ("rss", 6 * 3600),
        ("web", 1800),
    )
    # The processors' age of a source is event time: the stream's watermark minus the
    # source's newest event (right for paced replays and the demo, where history plays
    # faster than the clock). Once the watermark has not moved for this long the whole
    # stream is idle and ages are measured against the clock instead.
    idle_after: str = "5m"
    # A per-source gauge that was there within this range and is gone now: stalled as well
    # (a restarted worker, or a source that disappeared).
    vanished_within: str = "1h"
    # Sources that must always report (absent() per source); empty: only what ever reported.
    expected_sources: tuple[str, ...] = ()
    # Website events arrive through the collector under this platform/source name; a stall
    # there silences SocialReferralDrop.
    web_source: str = "web"


@dataclass(frozen=True)
class PipelineThresholds:
    lag_records: int = 10_000  # ProcessorLagHigh: records behind, per topic
    lag_for: str = "10m"
    dead_letters_window: str = "15m"
    dead_letters: int = 50  # DeadLettersHigh: dead letters per window, per stage and reason
    worker_down_for: str = "2m"


def local_webhook_url(port: int) -> str:
    """The local stack's webhook receiver (``deploy/stack/webhook_receiver.py``) on ``port``."""
    return f"http://127.0.0.1:{port}/"


@dataclass(frozen=True)
class AlertmanagerConfig:
    # The default receiver: the local stack's webhook receiver on [stack] webhook_port.
    webhook_url: str = local_webhook_url(StackSettings().webhook_port)
    default_receiver: str = "ripple-webhook"
    quiet_receiver: str = "ripple-quiet"  # no notifications: replays and other namespaces
    group_by: tuple[str, ...] = ("alertname", "namespace", "brand", "platform", "site")
    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"


@dataclass(frozen=True)
class GrafanaConfig:
    datasource_uid: str = "ripple-prometheus"
    datasource_name: str = "Ripple Prometheus"
    folder: str = "Ripple"
    folder_uid: str = "ripple"
    # What provisioning points Grafana at; defaults to the local stack's Prometheus port.
    prometheus_url: str = ""
    scrape_interval: str = "5s"  # Grafana's minimum step (the stack's scrape interval)
    refresh: str = "30s"
    time_from: str = "now-6h"
    uids: tuple[tuple[str, str], ...] = (
        ("smm", "ripple-smm"),
        ("smo", "ripple-smo"),
        ("pipeline", "ripple-pipeline"),
    )

    def uid(self, name: str) -> str:
        return dict(self.uids)[name]


@dataclass(frozen=True)
class Config:
    live_namespace: str = "ripple"  # the live pipeline; anything else is a replay or a test
    worker_job: str = "ripple-worker"  # Prometheus job of the faust workers
    rate_window: str = "5m"  # recorded rates (and the ratios made from them)
    slow_window: str = "1h"  # referral yield and conversion rate: METRICS.md's 1h windows
    runbook_url: str = "dashboards/runbook.md"  # runbook_url = this + "#" + alert anchor
    # Pipeline alerts; the rule table's severities are in processors.catalogue.ALERTS.
    severities: tuple[tuple[str, str], ...] = (
        ("IngestStalled", "critical"),
        ("ProcessorLagHigh", "warning"),
        ("DeadLettersHigh", "warning"),
        ("WorkerDown", "critical"),
    )
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    # (factor, floor, resolve) per alert of the rule table: ALERT_DEFAULTS, or a TOML's
    # [alerts.<name>] through from_ripple_config.
    rules: tuple[tuple[str, tuple[float, float, float]], ...] = tuple(ALERT_DEFAULTS.items())
    # [[campaigns]] with a start or an end date: annotations on the SMM and SMO boards.
    campaigns: tuple[CampaignDates, ...] = ()
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    # Where relative secret files live (the stack's state dir).
    state_dir: str = ".ripple"
    stall: StallConfig = field(default_factory=StallConfig)
    pipeline: PipelineThresholds = field(default_factory=PipelineThresholds)
    alertmanager: AlertmanagerConfig = field(default_factory=AlertmanagerConfig)
    grafana: GrafanaConfig = field(default_factory=GrafanaConfig)

    def severity(self, alertname: str) -> str:
        return dict(self.severities)[alertname]

    def rule(self, alertname: str) -> tuple[float, float, float]:
        return dict(self.rules)[alertname]


def from_ripple_config(rc: RippleConfig, base: Config | None = None) -> Config:
    """The generator's configuration with a Ripple TOML's [alerts], [notifications] and
    campaign dates (``ripple dashboards generate --config F``)."""
    base = CONFIG if base is None else base
    return replace(
        base,
        live_namespace=rc.kafka.namespace,
        rules=tuple((name, rc.alert_rule(name)) for name in ALERT_DEFAULTS),
        campaigns=tuple(
            CampaignDates(c.name, c.brand, c.start, c.end) for c in rc.campaigns if c.start or c.end
        ),
        notifications=rc.notifications,
        state_dir=rc.stack.state_dir,
        alertmanager=replace(
            base.alertmanager, webhook_url=local_webhook_url(rc.stack.webhook_port)
        ),
    )


CONFIG = Config()
