"""Prometheus alerting rules; they read the series ``dashboards.rules`` records.

Drop alerts (METRICS.md "Engagement drops") fire when the last 15 minutes fall below
``fire_ratio`` of the baseline and the baseline is at least ``baseline_floor``. They resolve
only when the ratio is back above ``resolve_ratio``: Prometheus 2.42 has no
``keep_firing_for``, so the hysteresis is in the expression itself: a label set whose alert is
already firing (``ALERTS{alertstate="firing"}``, written by the previous evaluation) keeps it
while the ratio stays at or below ``resolve_ratio``. No drop alert fires for a platform whose
ingestion stalled (``unless on (platform)`` the stalled sources); Alertmanager inhibits them
too (``deploy/alertmanager.yml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dashboards.config import CONFIG, Config
from dashboards.promql import NS, by, selector_body
from dashboards.rules import DROPS, LAG, NEWEST_AGE, STALLED, Drop, Group
from ingest.metricdefs import INGEST_DEAD_LETTERS
from processors.metrics import PROC_DEAD_LETTERS


@dataclass(frozen=True)
class Alert:
    alert: str
    expr: str
    summary: str
    description: str
    severity: str
    runbook_url: str
    for_: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"alert": self.alert, "expr": self.expr}
        if self.for_:
            out["for"] = self.for_
        out["labels"] = {"severity": self.severity, **self.labels}
        out["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": self.runbook_url,
        }
        return out


def runbook(alertname: str, cfg: Config = CONFIG) -> str:
    # GitHub-style anchor of the runbook heading "## <alertname>".
    return f"{cfg.runbook_url}#{alertname.lower()}"


def _pct(x: float) -> str:
    return f"{x * 100:g}%"


def drop_alert(drop: Drop, cfg: Config = CONFIG) -> Alert:
    d = cfg.drop
    k = by(drop.keys())
    firing = selector_body({"alertname": drop.alert, "alertstate": "firing"})
    held = f"({drop.ratio(cfg)} <= {d.resolve_ratio} and on ({k}) ALERTS{firing})"
    fires = f"({drop.ratio(cfg)} < {d.fire_ratio} and on ({k}) {drop.baseline(cfg)} >= {d.baseline_floor:g})"
    hold = d.hold_stale_seconds
    if "platform" in drop.labels:
        not_stalled = f"unless on (platform) ({NEWEST_AGE} > {hold})"
        where = "{{ $labels.brand }} on {{ $labels.platform }}"
    else:
        # Website metrics come through the collector: its stall holds these back.
        web = selector_body({"platform": cfg.stall.web_source})
        not_stalled = f"unless on () ({NEWEST_AGE}{web} > {hold})"
        where = "{{ $labels.site }} from {{ $labels.network }}"
    window = d.window
    noun = drop.noun[0].upper() + drop.noun[1:]
    return Alert(
        alert=drop.alert,
        expr=f"(\n  {fires}\n  or\n  {held}\n)\n{not_stalled}",
        summary=f"{noun} for {where} dropped to {{{{ $value | humanizePercentage }}}} of baseline",
        description=(
            f"{noun} in the last {window} are {{{{ $value | humanizePercentage }}}} of the baseline"
            f" (the same {window} window {d.seasonal_offset} earlier, or else the mean per {window}"
            f" over the {d.trailing_range} before it). Fires below {_pct(d.fire_ratio)} when the baseline"
            f" is at least {d.baseline_floor:g}; resolves above {_pct(d.resolve_ratio)}."
            " Namespace {{ $labels.namespace }}."
        ),
        severity=cfg.severity(drop.alert),
        runbook_url=runbook(drop.alert, cfg),
    )


def ingest_stalled(cfg: Config = CONFIG) -> Alert:
    s = cfg.stall
    return Alert(
        alert="IngestStalled",
        expr=STALLED,
        summary="Ingestion from {{ $labels.source }} stalled ({{ $labels.stage }})",
        description=(
            "The newest {{ $labels.source }} event the {{ $labels.stage }} saw is"
            " {{ $value | humanizeDuration }} old, past the stall threshold"
            f" ({s.threshold_seconds // 60}m unless the source has its own)."
            " Drop alerts for platform {{ $labels.platform }} are held back meanwhile"
            f" (from {cfg.drop.hold_stale_seconds // 60}m without events)."
        ),
        severity=cfg.severity("IngestStalled"),
        runbook_url=runbook("IngestStalled", cfg),
    )


def processor_lag(cfg: Config = CONFIG) -> Alert:
    p = cfg.pipeline
    return Alert(
        alert="ProcessorLagHigh",
        expr=f"{LAG} > {p.lag_records}",
        for_=p.lag_for,
        summary="Processors are {{ $value | humanize }} records behind on {{ $labels.topic }}",
        description=(
            "Consumer lag on {{ $labels.topic }} (namespace {{ $labels.namespace }}) has been"
            f" above {p.lag_records} records for {p.lag_for}: the workers do not keep up."
        ),
        severity=cfg.severity("ProcessorLagHigh"),
        runbook_url=runbook("ProcessorLagHigh", cfg),
    )


def dead_letters(cfg: Config = CONFIG) -> Alert:
    p = cfg.pipeline
    w = p.dead_letters_window

    def stage(metric: str, group: tuple[str, ...], name: str) -> str:
        inner = f"sum by ({by(group)}) (increase({metric}[{w}])) > {p.dead_letters}"
        return f'label_replace({inner}, "stage", "{name}", "", "")'

    expr = (
        stage(PROC_DEAD_LETTERS.name, (NS, "reason"), "processor")
        + " or "
        + stage(INGEST_DEAD_LETTERS.name, ("source", "reason"), "ingest")
    )
    return Alert(
        alert="DeadLettersHigh",
        expr=expr,
        summary="{{ $value | humanize }} dead letters ({{ $labels.reason }}) at the {{ $labels.stage }} stage",
        description=(
            f"More than {p.dead_letters} records went to the dead-letter topic in {w}"
            " with reason {{ $labels.reason }} ({{ $labels.stage }} stage). The records are kept"
            " there with their reason; the input or a parser changed."
        ),
        severity=cfg.severity("DeadLettersHigh"),
        runbook_url=runbook("DeadLettersHigh", cfg),
    )


def worker_down(cfg: Config = CONFIG) -> Alert:
    job = selector_body({"job": cfg.worker_job})
    return Alert(
        alert="WorkerDown",
        expr=f"up{job} == 0 or absent(up{job})",
        for_=cfg.pipeline.worker_down_for,
        summary="Ripple worker {{ $labels.instance }} is down",
        description=(
            "Prometheus cannot scrape a worker of job {{ $labels.job }}"
            " ({{ $labels.instance }}), or no worker is known at all,"
            f" for {cfg.pipeline.worker_down_for}. Nothing is processed meanwhile."
        ),
        severity=cfg.severity("WorkerDown"),
        runbook_url=runbook("WorkerDown", cfg),
    )


def groups(cfg: Config = CONFIG) -> tuple[Group, ...]:
    return (
        Group(
            "ripple-pipeline-alerts",
            (ingest_stalled(cfg), worker_down(cfg), processor_lag(cfg), dead_letters(cfg)),
        ),
        Group("ripple-drop-alerts", tuple(drop_alert(d, cfg) for d in DROPS)),
    )


def alert_names(cfg: Config = CONFIG) -> list[str]:
    return [a.alert for g in groups(cfg) for a in g.rules if isinstance(a, Alert)]
