"""What the benchmarks read of a worker's /metrics."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

from prometheus_client.parser import text_string_to_metric_families

from processors.catalogue import PROC_LATE, PROC_WINDOWS_CLOSED


def _samples(port: int, name: str) -> Iterator[tuple[dict[str, str], float]]:
    """(labels, value) of each sample of ``name`` on the worker's /metrics."""
    url = f"http://127.0.0.1:{port}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                yield sample.labels, sample.value


def late_events(port: int) -> dict[str, float]:
    """``ripple_processor_late_events_total`` of the worker on ``port``, by window."""
    out: dict[str, float] = {}
    for labels, value in _samples(port, PROC_LATE.name):
        out[labels["window"]] = out.get(labels["window"], 0.0) + value
    return out


def windows_closed(port: int, window: str) -> float | None:
    """Windows of size ``window`` the worker's rollup has made final, or None while it is not up."""
    try:
        found = list(_samples(port, PROC_WINDOWS_CLOSED.name))
    except OSError:
        return None
    return sum(v for labels, v in found if labels["window"] == window)
