"""Recording and alerting rules: names, references, promtool, and the runbook links."""

from __future__ import annotations

import re
import subprocess

import pytest

from dashboards import alerts, checks, generate, rules
from dashboards.config import CONFIG
from dashboards.promql import base_name
from processors.catalogue import ALERTS as TABLE
from processors.catalogue import CATALOGUE

RULE_NAME = re.compile(r"^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$")
ALERTS = [
    "EngagementDrop", "MentionSpike", "NegativeSentimentSpike", "SocialReferralDrop",
    "IngestStalled", "ProcessorLagHigh", "DeadLettersHigh", "WorkerDown",
]  # fmt: skip


def _recordings() -> list[rules.Recording]:
    return [r for g in rules.groups() for r in g.rules if isinstance(r, rules.Recording)]


def _alerts() -> list[alerts.Alert]:
    return [a for g in alerts.groups() for a in g.rules if isinstance(a, alerts.Alert)]


def test_promtool_check_rules() -> None:
    assert checks.promtool_check_rules() == []


def test_promtool_unit_tests() -> None:
    tests = sorted(checks.TESTS_DIR.glob("*.yaml"))
    assert {t.name for t in tests} >= {
        "drops.yaml", "spikes.yaml", "seasonal_baseline.yaml", "pipeline.yaml",
    }  # fmt: skip
    assert checks.promtool_test_rules(tests) == []


def test_promtool_tests_fail_when_the_rule_is_wrong(tmp_path) -> None:
    """The unit tests really pin the behaviour: without the hysteresis they fail."""
    text = generate.ALERTS_FILE.read_text()
    broken = re.sub(
        r"or\n\s+\(brand_platform:ripple_smm_engagements:ratio_baseline15m <= 0\.8[^\n]*\n",
        "\n",
        text,
    )
    assert broken != text
    out = tmp_path / "dashboards" / "out"
    out.mkdir(parents=True)
    (out / "prometheus_alerts.yaml").write_text(broken)
    (out / "prometheus_rules.yaml").write_text(generate.RULES_FILE.read_text())
    tests = tmp_path / "dashboards" / "tests"
    tests.mkdir()
    (tests / "drops.yaml").write_text((checks.TESTS_DIR / "drops.yaml").read_text())
    proc = subprocess.run(
        ["promtool", "test", "rules", str(tests / "drops.yaml")], capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "EngagementDrop" in proc.stdout + proc.stderr


def test_recording_rule_names_follow_level_metric_operations() -> None:
    names = [r.record for r in _recordings()]
    assert len(names) == len(set(names))
    bad = [n for n in names if not RULE_NAME.match(n)]
    assert not bad
    assert "brand_platform:ripple_smm_engagements:increase15m" in names


def test_every_counter_has_a_rate_at_its_own_labels() -> None:
    names = {r.record for r in _recordings()}
    for m in CATALOGUE:
        if m.type == "counter":
            lvl = "_".join(lbl for lbl in m.labels if lbl != "namespace") or "namespace"
            assert f"{lvl}:{base_name(m)}:rate{CONFIG.rate_window}" in names, m.name


def test_ratios_divide_sums_and_are_never_averaged() -> None:
    ratio_rules = [r for r in _recordings() if ":ratio_" in r.record]
    assert {r.record.split(":")[1] for r in ratio_rules} >= {
        "ripple_smm_engagement_rate", "ripple_smm_amplification", "ripple_smm_share_of_voice",
        "ripple_smo_share_rate", "ripple_smo_referral_yield", "ripple_smo_social_conversion_rate",
    }  # fmt: skip
    recorded = {r.record: r.expr for r in _recordings()}
    for rule in _recordings() + _alerts():  # type: ignore[operator]
        assert "avg" not in rule.expr
    for r in ratio_rules:
        if "baseline" in r.record:
            continue
        # numerator / (denominator > 0), both recorded sums of raw counter rates
        for ref in checks.referenced_series(r.expr):
            assert recorded[ref].startswith("sum by ("), ref


def test_rules_reference_only_the_catalogue_or_earlier_rules() -> None:
    assert checks.check_rule_references() == []


def test_the_reference_check_catches_unknown_names_and_bad_syntax() -> None:
    known = checks.catalogue_series()
    assert checks.unknown_references([("x", "rate(ripple_smm_mentions_total[5m])")], known) == []
    (problem,) = checks.unknown_references([("x", "rate(ripple_smm_mention_total[5m])")], known)
    assert "ripple_smm_mention_total" in problem
    (problem,) = checks.unknown_references([("x", "sum(rate(x[5m])")], known)
    assert "does not parse" in problem
    assert checks.referenced_series('{__name__="up", job="a"} + ALERTS') == {"up", "ALERTS"}


def test_every_alert_is_there_with_severity_annotations_and_a_runbook_section() -> None:
    found = {a.alert: a for a in _alerts()}
    assert sorted(found) == sorted(ALERTS)
    runbook = (generate.PACKAGE_DIR / "runbook.md").read_text()
    anchors = {h.strip().lower().replace(" ", "-") for h in re.findall(r"^## (.+)$", runbook, re.M)}
    for a in found.values():
        d = a.to_dict()
        assert d["labels"]["severity"] in {"critical", "warning", "info"}  # type: ignore[index]
        ann = d["annotations"]
        assert ann["summary"] and ann["description"]  # type: ignore[index]
        url = ann["runbook_url"]  # type: ignore[index]
        path, anchor = url.split("#")
        assert path == "dashboards/runbook.md" and anchor in anchors, url


@pytest.mark.parametrize("name", [a.name for a in TABLE])
def test_table_alerts_have_hysteresis_and_only_drops_a_stall_hold_back(name: str) -> None:
    alert = next(a for a in _alerts() if a.alert == name)
    assert f'ALERTS{{alertname="{name}", alertstate="firing"}}' in alert.expr
    defn = next(a for a in TABLE if a.name == name)
    assert (rules.NEWEST_AGE in alert.expr) == (defn.kind == "drop")
    assert alert.severity == defn.severity
    det = rules.detector(name)
    baseline = next(r for r in _recordings() if r.record == det.baseline())
    assert "offset 1w)" in baseline.expr and "[2h] offset 15m)) / 8" in baseline.expr
    assert {"value", "baseline", "dashboard_url"} <= set(alert.to_dict()["annotations"])  # type: ignore[arg-type]


def test_a_toml_rule_table_flows_into_the_rules(tmp_path) -> None:
    """[alerts.<name>] of a Ripple TOML changes factor, floor and resolve of that alert only."""
    from dashboards.config import from_ripple_config
    from ingest.config import load_config

    toml = tmp_path / "r.toml"
    toml.write_text("[alerts.MentionSpike]\nfactor = 4\nfloor = 50\n")
    cfg = from_ripple_config(load_config(toml))
    spike = next(a for a in alerts.groups(cfg)[1].rules if a.alert == "MentionSpike")  # type: ignore[attr-defined]
    assert ">= 4 * brand_platform" in spike.expr and ">= 50)" in spike.expr
    assert ">= 1.5 * brand_platform" in spike.expr  # resolve: the default
    drop = next(a for a in alerts.groups(cfg)[1].rules if a.alert == "EngagementDrop")  # type: ignore[attr-defined]
    assert "< 0.5 and" in drop.expr and ">= 20)" in drop.expr


def test_expected_sources_that_never_reported_are_stalled(tmp_path) -> None:
    """With ``expected_sources`` configured, a source that never reported is stalled (absent)."""
    from dataclasses import replace

    from dashboards.config import StallConfig

    cfg = replace(CONFIG, stall=replace(StallConfig(), expected_sources=("bluesky", "x")))
    generate.write(cfg, root=tmp_path)
    out = tmp_path / "dashboards" / "out"
    (tmp_path / "absent.yaml").write_text(f"""
rule_files: [{out / "prometheus_rules.yaml"}, {out / "prometheus_alerts.yaml"}]
evaluation_interval: 1m
group_eval_order: [ripple-freshness, ripple-drops, ripple-smm, ripple-smo, ripple-pipeline,
                   ripple-pipeline-alerts, ripple-drop-alerts]
tests:
  - interval: 1m
    input_series:
      - series: 'ripple_processor_last_event_timestamp_seconds{{namespace="ripple", source="x"}}'
        values: '0+60x20'
    promql_expr_test:
      - expr: source_stage:ripple_newest_event:stalled
        eval_time: 5m
        exp_samples:
          - labels: 'source_stage:ripple_newest_event:stalled{{namespace="ripple", source="bluesky", platform="bluesky", stage="processor"}}'
            value: .inf
""")
    assert checks.promtool_test_rules([tmp_path / "absent.yaml"]) == []
