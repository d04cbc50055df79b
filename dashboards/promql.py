"""Small PromQL vocabulary: names, selectors and durations derived from ``MetricDef``.

Every metric name in a generated rule or panel comes from a ``MetricDef`` through these
helpers, so a renamed metric or label breaks generation instead of a dashboard.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ingest.metricdefs import MetricDef

NS = "namespace"

_DURATION = re.compile(r"(\d+)(ms|[smhdwy])")
_UNIT_SECONDS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


def seconds(duration: str) -> int:
    """``"2h15m"`` -> 8100 (Prometheus duration syntax, whole seconds)."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts if u != "ms")


def duration(total: int) -> str:
    """8100 -> ``"2h15m"``: the shortest Prometheus duration for a whole number of seconds."""
    if total <= 0:
        raise ValueError("durations are positive")
    out = []
    for unit in ("w", "d", "h", "m", "s"):
        n, total = divmod(total, _UNIT_SECONDS[unit])
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


def base_name(metric: MetricDef) -> str:
    """The metric part of a recording rule name: counters lose ``_total``."""
    return metric.name.removesuffix("_total") if metric.type == "counter" else metric.name


def keys(metric: MetricDef, labels: Iterable[str]) -> tuple[str, ...]:
    """Aggregation keys: ``namespace`` (when the metric has it) plus ``labels``, validated."""
    labels = tuple(labels)
    unknown = [lbl for lbl in labels if lbl not in metric.labels]
    if unknown:
        raise ValueError(f"{metric.name} has no label(s) {unknown}; it has {metric.labels}")
    return ((NS,) if NS in metric.labels else ()) + tuple(lbl for lbl in labels if lbl != NS)


def level(labels: Iterable[str]) -> str:
    """Level of a recording rule: the labels kept besides ``namespace`` (always kept)."""
    rest = [lbl for lbl in labels if lbl != NS]
    return "_".join(rest) or NS


def record_name(labels: Iterable[str], metric: str, operation: str) -> str:
    """``level:metric:operations`` (Prometheus' naming convention for recording rules)."""
    return f"{level(labels)}:{metric}:{operation}"


def by(labels: Iterable[str]) -> str:
    return ", ".join(labels)


def selector_body(values: Mapping[str, str]) -> str:
    """``{a="x", b=~"y"}``; a value may start with an operator: ``=~``, ``!~`` or ``!=``."""
    if not values:
        return ""
    parts = []
    for name, value in values.items():
        op = next((o for o in ("=~", "!~", "!=") if value.startswith(o)), "=")
        parts.append(f'{name}{op}"{value.removeprefix(op) if op != "=" else value}"')
    return "{" + ", ".join(parts) + "}"


def const_label(expr: str, name: str, value: str) -> str:
    """Add a constant label to every series of ``expr`` (label_replace on the empty label)."""
    return f'label_replace({expr}, "{name}", "{value}", "", "")'


def copy_label(expr: str, dst: str, src: str) -> str:
    return f'label_replace({expr}, "{dst}", "$1", "{src}", "(.*)")'
