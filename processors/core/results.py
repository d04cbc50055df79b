"""Result rows in the results-file format of METRICS.md, and their canonical order."""

from __future__ import annotations

from typing import Any

import orjson

from processors.core.windows import iso
from processors.wire import ResultRow

Row = ResultRow


def row(
    metric: str, window: str, start: float, end: float, labels: dict[str, str], value: Any
) -> Row:
    return {
        "metric": metric,
        "window": window,
        "window_start": iso(start),
        "window_end": iso(end),
        "labels": labels,
        "value": value,
    }


def identity(r: Row) -> tuple[str, str, str, str]:
    """What makes a row unique; a later revision replaces an earlier one."""
    return (
        r["metric"],
        r["window"],
        r["window_start"],
        orjson.dumps(r["labels"], option=orjson.OPT_SORT_KEYS).decode(),
    )


def sort_key(r: Row) -> tuple[str, str, str, str, str]:
    m, w, s, labels = identity(r)
    return (s, w, m, labels, r["window_end"])


def dumps(r: Row) -> bytes:
    return orjson.dumps(r)
