"""One catalogue (processors.catalogue): every metric and alert in it reaches every output
that should carry it: result rows, live counters, backfill, recording rules, dashboards,
alerting rules, runbook, and the stream detector."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from processors import catalogue as m
from processors.core.counters import window_counts
from processors.core.resolve import Partial, SmmCounts
from processors.core.stream_alerts import SERIES
from processors.harness import run
from tests.reference import dataset_r2
from tests.reference.oracle import config_from_toml

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "dashboards" / "out"


def _rows() -> list[dict]:
    toml, lines = dataset_r2.generate(seed=20)
    return run(config_from_toml(toml), lines)


def test_every_result_counter_has_rows_and_a_live_counter() -> None:
    rows = _rows()
    metrics_in_rows = {r["metric"] for r in rows}
    assert set(m.RESULT_COUNTERS) <= metrics_in_rows
    # The live counters come from the same partials: every counted metric is exported.
    p = Partial()
    p.smm[("acme", "x")] = SmmCounts(1, 1, 1, 1)
    p.authors[("acme", "x")] = {"a": 3}
    p.sentiment[("acme", "x", "negative")] = 1
    p.pageviews["s"] = 1
    p.referrals[("s", "x")] = 1
    p.paid[("s", "x")] = 1
    p.shares[("s", "x")] = 1
    p.conversions[("s", "x")] = 1
    p.conversion_values[("s", "x")] = [2.5]
    exported = {name for name, _ in window_counts(p)}
    assert {d.name for d in m.RESULT_COUNTERS.values()} <= exported


def test_every_smm_and_smo_counter_is_recorded_and_on_a_dashboard() -> None:
    rules = (OUT / "prometheus_rules.yaml").read_text()
    panels = "".join(p.read_text() for p in (OUT / "grafana").glob("*.json"))
    for d in (*m.SMM_METRICS, *m.SMO_METRICS):
        assert d.name in rules, f"{d.name}: no recording rule reads it"
        assert d.name in panels or d.name.removesuffix("_total") in rules, d.name


def test_every_alert_of_the_table_is_a_prometheus_rule_a_runbook_section_and_a_stream_series() -> (
    None
):
    groups = yaml.safe_load((OUT / "prometheus_alerts.yaml").read_text())["groups"]
    alerts = {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}
    runbook = (ROOT / "dashboards" / "runbook.md").read_text()
    for a in m.ALERTS:
        rule = alerts[a.name]
        assert rule["labels"]["severity"] == a.severity
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
        assert f"## {a.name}" in runbook
        assert (
            a.counter.name in json.dumps(rule)
            or a.counter.name in (OUT / "prometheus_rules.yaml").read_text()
        )
        assert a.series in SERIES  # the stream detector reads the same series
