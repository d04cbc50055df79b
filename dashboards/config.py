"""The one configuration the dashboards, rules and alerts are generated from.

Metric names and labels come from ``processors.metrics.CATALOGUE``; everything else that a
generated file depends on (selectors, thresholds, windows, uids, receivers) is here, so a
change of threshold is one edit followed by ``ripple dashboards generate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DropConfig:
    """METRICS.md "Engagement drops", shared by EngagementDrop and its siblings."""

    window: str = "15m"  # engagements in [T-15m, T)
    fire_ratio: float = 0.5  # fires below half of the baseline
    resolve_ratio: float = 0.8  # resolves when back above 0.8 of it
    baseline_floor: float = 20  # and only when the baseline is at least 20
    seasonal_offset: str = "1w"  # same 15 minutes one week earlier, when the history exists
    trailing_range: str = "2h"  # else the mean per 15m over [T-2h15m, T-15m) ...
    trailing_periods: int = 8  # ... = increase over 2h, offset 15m, divided by 8
    # Held back while the platform's newest event is older than this: a total stop looks like
    # a drop about 7.5 minutes in, before IngestStalled's own threshold is reached.
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


@dataclass(frozen=True)
class AlertmanagerConfig:
    webhook_url: str = "http://127.0.0.1:19095/"  # default receiver (a local webhook)
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
    severities: tuple[tuple[str, str], ...] = (
        ("EngagementDrop", "critical"),
        ("MentionVolumeDrop", "warning"),
        ("SocialReferralDrop", "warning"),
        ("IngestStalled", "critical"),
        ("ProcessorLagHigh", "warning"),
        ("DeadLettersHigh", "warning"),
        ("WorkerDown", "critical"),
    )
    drop: DropConfig = field(default_factory=DropConfig)
    stall: StallConfig = field(default_factory=StallConfig)
    pipeline: PipelineThresholds = field(default_factory=PipelineThresholds)
    alertmanager: AlertmanagerConfig = field(default_factory=AlertmanagerConfig)
    grafana: GrafanaConfig = field(default_factory=GrafanaConfig)

    def severity(self, alertname: str) -> str:
        return dict(self.severities)[alertname]


CONFIG = Config()
