"""Every panel's PromQL names only catalogue series or recorded rules (static check)."""

from __future__ import annotations

from dashboards import checks, grafana, rules


def test_panels_reference_only_known_series() -> None:
    assert checks.check_panel_references() == []


def test_variables_reference_the_catalogue() -> None:
    assert checks.check_variable_references() == []


def test_panel_queries_are_runnable_as_is() -> None:
    queries = grafana.panel_queries()
    assert len(queries) == len(grafana.panel_targets()) > 50
    for q in queries:
        assert "$" not in q.replace("$1", ""), q
        checks.referenced_series(q)  # parses


def test_panel_queries_for_a_replay_namespace() -> None:
    queries = grafana.panel_queries("replay-1")
    assert any('namespace="replay-1"' in q for q in queries)
    assert not any('namespace="ripple"' in q for q in queries if "newest_event" not in q)


def test_substitute_rejects_unknown_variables() -> None:
    try:
        grafana.substitute('up{a="$nope"}', {})
    except KeyError as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("expected KeyError")


def test_ratio_panels_use_recorded_ratios_or_quotients_of_sums() -> None:
    ratio_records = {r.record() for r in rules.RATIOS} | {rules.net_sentiment_rule().record}
    for t in grafana.panel_targets():
        if "rate" in t.panel.lower() and "/" in t.expr:
            assert "sum" in t.expr, t
        for ref in checks.referenced_series(
            t.promql({**grafana.DEFAULT_VALUES, "namespace": "ripple"})
        ):
            if ":ratio_rate" in ref:
                assert ref in ratio_records
