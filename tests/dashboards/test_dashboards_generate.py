"""The generated files: deterministic, committed as generated, shaped as Grafana expects."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import yaml

from dashboards import generate, grafana
from dashboards.config import CONFIG


def test_generator_is_deterministic() -> None:
    assert generate.outputs() == generate.outputs()


def test_committed_output_equals_the_generators() -> None:
    stale = generate.stale()
    assert not stale, f"run `ripple dashboards generate`; stale: {stale}"


def test_write_into_an_empty_tree_then_nothing_to_do(tmp_path) -> None:
    written = generate.write(root=tmp_path)
    expected = {
        "dashboards/out/prometheus_rules.yaml",
        "dashboards/out/prometheus_alerts.yaml",
        "dashboards/out/grafana/smm.json",
        "dashboards/out/grafana/smo.json",
        "dashboards/out/grafana/pipeline.json",
        "deploy/alertmanager.yml",
        "deploy/grafana/provisioning/datasources/ripple.yaml",
        "deploy/grafana/provisioning/dashboards/ripple.yaml",
        "deploy/compose/grafana/datasources/ripple.yaml",
        "deploy/helm/ripple/files/prometheus_rules.yaml",
        "deploy/helm/ripple/files/prometheus_alerts.yaml",
        "deploy/helm/ripple/files/grafana/smm.json",
        "deploy/helm/ripple/files/grafana/smo.json",
        "deploy/helm/ripple/files/grafana/pipeline.json",
        "deploy/helm/ripple/files/grafana-datasource.yaml",
    }
    assert {str(p.relative_to(tmp_path)) for p in written} == expected
    assert generate.write(root=tmp_path) == []
    assert generate.stale(root=tmp_path) == []


def test_a_config_change_changes_the_output() -> None:
    rules = dict(CONFIG.rules)
    rules["EngagementDrop"] = (0.4, 20.0, 0.8)
    cfg = replace(CONFIG, rules=tuple(rules.items()))
    rules_path = generate.ALERTS_FILE
    assert "< 0.4" in generate.outputs(cfg)[rules_path]
    assert "< 0.4" not in generate.outputs()[rules_path]


@pytest.mark.parametrize("name", ["smm", "smo", "pipeline"])
def test_dashboard_json_is_sorted_with_fixed_uid(name: str) -> None:
    text = (generate.GRAFANA_DIR / f"{name}.json").read_text()
    board = json.loads(text)
    assert text == json.dumps(board, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert board["uid"] == CONFIG.grafana.uid(name)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) and 0 not in ids
    for panel in board["panels"]:
        if panel["type"] in ("row", "text"):
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": CONFIG.grafana.datasource_uid}
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)) and all(ref_ids)
        assert all(
            t["datasource"]["uid"] == CONFIG.grafana.datasource_uid for t in panel["targets"]
        )
        assert panel["gridPos"]["w"] > 0 and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def _titles(name: str) -> str:
    board = json.loads((generate.GRAFANA_DIR / f"{name}.json").read_text())
    return " | ".join(p["title"].lower() for p in board["panels"])


@pytest.mark.parametrize(
    ("name", "needed"),
    [
        ("smm", ["mentions", "unique authors", "potential reach", "engagements",
                 "engagement rate", "amplification", "share of voice", "brands over the range"]),
        ("smo", ["pageviews", "social referrals per minute by network", "share clicks",
                 "share rate", "referral yield", "social conversions", "social conversion rate"]),
        ("pipeline", ["events in per source", "throughput", "consumer lag", "watermark",
                      "freshness", "late events", "dead letters by reason", "worker health"]),
    ],
)  # fmt: skip
def test_dashboards_show_what_the_issue_asks(name: str, needed: list[str]) -> None:
    titles = _titles(name)
    missing = [n for n in needed if n not in titles]
    assert not missing, f"{name}: no panel for {missing}"


@pytest.mark.parametrize(
    ("name", "variables"),
    [("smm", ["namespace", "brand", "platform"]), ("smo", ["namespace", "site"]),
     ("pipeline", ["namespace"])],
)  # fmt: skip
def test_variables(name: str, variables: list[str]) -> None:
    board = json.loads((generate.GRAFANA_DIR / f"{name}.json").read_text())
    found = {v["name"]: v for v in board["templating"]["list"]}
    assert list(found) == variables
    assert found["namespace"]["current"]["value"] == CONFIG.live_namespace
    for v in variables[1:]:
        assert found[v]["includeAll"] and found[v]["allValue"] == ".*"
        assert 'namespace="$namespace"' in found[v]["query"]


def test_provisioning_points_at_the_generated_dashboards_and_datasource() -> None:
    ds = yaml.safe_load(
        (generate.REPO_ROOT / generate.PROVISIONING / "datasources/ripple.yaml").read_text()
    )
    (source,) = ds["datasources"]
    assert source["uid"] == CONFIG.grafana.datasource_uid and source["type"] == "prometheus"
    from ingest.config import StackSettings

    assert source["url"].endswith(f":{StackSettings().prometheus_port}")
    prov = yaml.safe_load(
        (generate.REPO_ROOT / generate.PROVISIONING / "dashboards/ripple.yaml").read_text()
    )
    (provider,) = prov["providers"]
    assert provider["options"]["path"].endswith(str(generate.GRAFANA))


def test_every_board_renders_from_its_spec() -> None:
    specs = {b.name: b for b in grafana.boards()}
    for name, board in grafana.dashboards().items():
        targets = [t for p in board["panels"] if p["type"] != "row" for t in p.get("targets", [])]
        spec_queries = [q for r in specs[name].rows for p in r.panels for q in p.queries]
        assert [t["expr"] for t in targets] == [q.expr for q in spec_queries]


def test_campaign_dates_and_alerts_are_annotations_on_smm_and_smo(tmp_path) -> None:
    from dashboards import checks
    from dashboards.config import from_ripple_config
    from ingest.config import load_config

    toml = tmp_path / "r.toml"
    toml.write_text(
        '[[brands]]\nname = "acme"\n[[campaigns]]\nname = "bf2026"\nbrand = "acme"\n'
        'start = "2026-11-27"\nend = "2026-11-30T23:00:00Z"\n'
    )
    cfg = from_ripple_config(load_config(toml))
    boards = grafana.dashboards(cfg)
    for name in ("smm", "smo"):
        notes = {a["name"]: a for a in boards[name]["annotations"]["list"]}
        assert {"Alerts (Prometheus)", "Alerts (stream)", "Campaign bf2026"} <= set(notes)
        expr = notes["Campaign bf2026"]["expr"]
        # 2026-11-27T00:00Z and 2026-11-30T23:00Z as unix seconds.
        assert ">= 1795737600" in expr and "< 1796079600" in expr
        assert "ALERTS" in notes["Alerts (Prometheus)"]["expr"]
    assert "annotations" not in boards["pipeline"] or not [
        a for a in boards["pipeline"]["annotations"]["list"] if a["name"].startswith("Campaign")
    ]
    assert checks.check_panel_references(cfg) == []
