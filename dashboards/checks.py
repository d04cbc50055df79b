"""Checks of the generated files: references, promtool, amtool, freshness.

Used by ``ripple dashboards check`` and by the tests. Every check returns a list of problems
(empty: fine), so callers can report all of them at once.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import promql_parser

from dashboards import alerts, generate, grafana, rules
from dashboards.config import CONFIG, Config
from processors.catalogue import CATALOGUE

# Series Prometheus makes itself, which the rules and panels may read.
BUILTIN_SERIES = frozenset({"up", "ALERTS"})
TESTS_DIR = generate.PACKAGE_DIR / "tests"


def catalogue_series() -> set[str]:
    """Every series name the catalogue exposes (histograms as _bucket, _sum and _count)."""
    names = set()
    for m in CATALOGUE:
        if m.type == "histogram":
            names |= {f"{m.name}_bucket", f"{m.name}_sum", f"{m.name}_count"}
        else:
            names.add(m.name)
    return names


def _selectors(node: Any) -> Iterator[Any]:
    if isinstance(node, promql_parser.VectorSelector):
        yield node
        return
    for attr in ("lhs", "rhs", "expr", "param", "vector_selector"):
        child = getattr(node, attr, None)
        if child is not None:
            yield from _selectors(child)
    for child in getattr(node, "args", None) or ():
        yield from _selectors(child)


def referenced_series(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (raises ValueError when it does not parse)."""
    names = set()
    for sel in _selectors(promql_parser.parse(expr)):
        if sel.name:
            names.add(sel.name)
        else:
            names |= {m.value for m in sel.matchers.matchers if m.name == "__name__"}
    return names


def unknown_references(exprs: Iterable[tuple[str, str]], known: set[str]) -> list[str]:
    problems = []
    for where, expr in exprs:
        try:
            unknown = referenced_series(expr) - known
        except ValueError as exc:
            problems.append(f"{where}: does not parse: {exc}: {expr}")
            continue
        if unknown:
            problems.append(f"{where}: unknown series {sorted(unknown)}: {expr}")
    return problems


def check_rule_references(cfg: Config = CONFIG) -> list[str]:
    """Rules read only catalogue series, Prometheus' own, or rules recorded before them."""
    known = catalogue_series() | BUILTIN_SERIES
    problems = []
    for group in rules.groups(cfg):
        for rule in group.rules:
            assert isinstance(rule, rules.Recording)
            problems += unknown_references([(f"{group.name}/{rule.record}", rule.expr)], known)
            known.add(rule.record)
    for group in alerts.groups(cfg):
        for alert in group.rules:
            assert isinstance(alert, alerts.Alert)
            problems += unknown_references([(f"{group.name}/{alert.alert}", alert.expr)], known)
    return problems


def check_panel_references(cfg: Config = CONFIG) -> list[str]:
    """Panels read only catalogue series, Prometheus' own, or recorded rules."""
    known = catalogue_series() | BUILTIN_SERIES | rules.recorded_names(cfg)
    values = {**grafana.DEFAULT_VALUES, "namespace": cfg.live_namespace}
    targets = grafana.panel_targets(cfg)
    exprs = [(f"{t.board}/{t.panel}/{t.ref_id}", t.promql(values)) for t in targets]
    exprs += [
        (f"{b.name}/annotation {a.name}", grafana.substitute(a.expr, values))
        for b in grafana.boards(cfg)
        for a in grafana.annotation_specs(b, cfg)
    ]
    return unknown_references(exprs, known)


def check_variable_references(cfg: Config = CONFIG) -> list[str]:
    known = catalogue_series()
    return [
        f"{b.name}/${v.name}: {v.metric.name} is not in the catalogue"
        for b in grafana.boards(cfg)
        for v in b.variables
        if v.metric.name not in known or v.label_name not in v.metric.labels
    ]


def check_fresh(cfg: Config = CONFIG) -> list[str]:
    return [
        f"{p} differs from the generator's output: run `ripple dashboards generate`"
        for p in generate.stale(cfg)
    ]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(
            f"{name} not found: install Debian's prometheus / prometheus-alertmanager"
        )
    return path


def _run(argv: list[str]) -> list[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if proc.returncode == 0:
        return []
    return [f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"]


def promtool_check_rules() -> list[str]:
    return _run(
        [_tool("promtool"), "check", "rules", str(generate.RULES_FILE), str(generate.ALERTS_FILE)]
    )


def promtool_test_rules(files: Iterable[Path] | None = None) -> list[str]:
    tests = sorted(files or TESTS_DIR.glob("*.yaml"))
    if not tests:
        return [f"no promtool tests in {TESTS_DIR}"]
    return _run([_tool("promtool"), "test", "rules", *map(str, tests)])


def amtool_check_config() -> list[str]:
    return _run([_tool("amtool"), "check-config", str(generate.ALERTMANAGER_FILE)])


def all_checks(cfg: Config = CONFIG) -> list[str]:
    problems = check_fresh(cfg)
    problems += check_rule_references(cfg)
    problems += check_panel_references(cfg)
    problems += check_variable_references(cfg)
    problems += promtool_check_rules()
    problems += promtool_test_rules()
    problems += amtool_check_config()
    return problems
