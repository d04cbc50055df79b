"""Prometheus alerting rules; they read the series ``dashboards.rules`` records.

The four alerts of METRICS.md "Spikes and drops" come from ``processors.catalogue.ALERTS`` (one
``AlertDef`` each, the same table the stream detector reads), with their factor, floor and
resolve factor from ``Config.rules`` (``[alerts.<name>]`` of a TOML). At each evaluation x is
the increase over the last 15 minutes and B the baseline (``dashboards.rules.Detector``):

- a drop fires when x < factor * B and B >= floor; a spike when x >= factor * B and x >= floor;
- hysteresis: Prometheus 2.42 has no ``keep_firing_for``, so it is in the expression itself:
  a label set whose alert is already firing (``ALERTS{alertstate="firing"}``, written by the
  previous evaluation) keeps it while a drop's x <= resolve * B (or B is 0: "a firing drop
  resolves only where B > 0") and while a spike's x >= resolve * B;
- drops are held back while their platform was stalled at any point of the last window
  (``unless on (platform)`` the stalled sources; ``web`` for SocialReferralDrop); spikes never
  are. Alertmanager inhibits them too (``deploy/alertmanager.yml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dashboards.config import CONFIG, Config
from dashboards.promql import NS, by, duration, seconds, selector_body
from dashboards.rules import DETECTORS, LAG, NEWEST_AGE, STALLED, Detector, Group
from ingest.metricdefs import INGEST_DEAD_LETTERS
from processors.catalogue import PROC_DEAD_LETTERS


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
    annotations: dict[str, str] = field(default_factory=dict)  # beyond the three every alert has

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"alert": self.alert, "expr": self.expr}
        if self.for_:
            out["for"] = self.for_
        out["labels"] = {"severity": self.severity, **self.labels}
        out["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": self.runbook_url,
            **self.annotations,
        }
        return out


def runbook(alertname: str, cfg: Config = CONFIG) -> str:
    # GitHub-style anchor of the runbook heading "## <alertname>".
    return f"{cfg.runbook_url}#{alertname.lower()}"


def _pct(x: float) -> str:
    return f"{x * 100:g}%"


def _query_value(record: str, labels: tuple[str, ...]) -> str:
    """Template text: the value of ``record`` for the alert's label set (0 when absent)."""
    matchers = ", ".join(f"{lbl}=%q" for lbl in labels)
    args = " ".join(f"$labels.{lbl}" for lbl in labels)
    return (
        f'{{{{ with printf "{record}{{{matchers}}}" {args} | query }}}}'
        "{{ . | first | value | humanize }}{{ else }}0{{ end }}"
    )


def _template(text: str, labels: tuple[str, ...], factor: float) -> str:
    """An AlertDef summary (``{brand}``, ``{factor:g}`` placeholders) as a Prometheus template."""
    return text.format(**{lbl: f"{{{{ $labels.{lbl} }}}}" for lbl in labels}, factor=factor)


def dashboard_link(det: Detector, cfg: Config = CONFIG) -> str:
    """The board of the alert's series, variables set to its labels (panel: the detector's)."""
    board = "smm" if "brand" in det.labels else "smo"
    uid = cfg.grafana.uid(board)
    q = "&".join(
        f"var-{lbl}={{{{ $labels.{lbl} }}}}" for lbl in (NS, *det.labels) if lbl != "network"
    )
    return f"{cfg.notifications.grafana_url.rstrip('/')}/d/{uid}?{q}"


def _not_stalled(det: Detector, cfg: Config) -> str:
    # Stalled at any point in (T-15m, T]: Prometheus 2.x ranges include their start, so the
    # range is a second shorter than the window.
    hold, window = cfg.baseline.hold_stale_seconds, duration(seconds(cfg.baseline.window) - 1)
    if det.alert.stall_platform is None:
        return f"unless on (platform) (max_over_time({NEWEST_AGE}[{window}]) > {hold})"
    web = selector_body({"platform": det.alert.stall_platform})
    return f"unless on () (max_over_time({NEWEST_AGE}{web}[{window}]) > {hold})"


def table_alert(det: Detector, cfg: Config = CONFIG) -> Alert:
    """One alert of the rule table (METRICS.md "Spikes and drops") as a Prometheus rule."""
    a = det.alert
    factor, floor, resolve = cfg.rule(a.name)
    k = by(det.keys())
    x, b, ratio = det.current(cfg), det.baseline(cfg), det.ratio(cfg)
    firing = f"ALERTS{selector_body({'alertname': a.name, 'alertstate': 'firing'})}"
    window = cfg.baseline.window
    if a.kind == "drop":
        fires = f"({ratio} < {factor:g} and on ({k}) {b} >= {floor:g})"
        held = f"({ratio} <= {resolve:g} and on ({k}) {firing})"
        # B = 0: there is no ratio, and a firing drop resolves only where B > 0.
        zero = f"((0 * {b} unless on ({k}) {b} > 0) and on ({k}) {firing})"
        expr = f"(\n  {fires}\n  or\n  {held}\n  or\n  {zero}\n)\n{_not_stalled(det, cfg)}"
        rule = (
            f"Fires below {_pct(factor)} of the baseline when the baseline is at least {floor:g};"
            f" resolves above {_pct(resolve)}; held back while the platform's ingestion is stalled."
        )
    else:
        fires = f"({x} >= {factor:g} * {b} and {x} >= {floor:g})"
        held = f"(({x} or 0 * {b}) >= {resolve:g} * {b} and on ({k}) {firing})"
        expr = f"(\n  {fires}\n  or\n  {held}\n)"
        rule = (
            f"Fires at {factor:g}x the baseline or more with at least {floor:g} in {window};"
            f" resolves below {resolve:g}x."
        )
    labels = det.keys()
    value = _query_value(x, labels)
    baseline = _query_value(b, labels)
    series = a.series.replace("_", " ") + "".join(f" ({v})" for _, v in a.match)
    return Alert(
        alert=a.name,
        expr=expr,
        summary=_template(a.summary, det.labels, factor),
        description=(
            f"{value} {series} in the last {window} against a baseline of {baseline}"
            f" (the same {window} {cfg.baseline.seasonal_offset} earlier, or else the mean per"
            f" {window} over the {cfg.baseline.trailing_range} before). {rule}"
            " Namespace {{ $labels.namespace }}."
        ),
        severity=a.severity,
        runbook_url=runbook(a.name, cfg),
        annotations={
            "value": value,
            "baseline": baseline,
            "dashboard_url": dashboard_link(det, cfg),
        },
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
            f" ({s.threshold_seconds // 60}m unless the source has its own; the processors"
            " measure event time: behind the stream's newest event)."
            " Drop alerts for platform {{ $labels.platform }} are held back meanwhile"
            f" (from {cfg.baseline.hold_stale_seconds // 60}m without events)."
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
        Group("ripple-table-alerts", tuple(table_alert(d, cfg) for d in DETECTORS)),
    )


def alert_names(cfg: Config = CONFIG) -> list[str]:
    return [a.alert for g in groups(cfg) for a in g.rules if isinstance(a, Alert)]
