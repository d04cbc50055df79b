"""What the benchmarks read of a worker's /metrics."""

from __future__ import annotations

import urllib.request


def _scrape(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()


def late_events(port: int) -> dict[str, float]:
    """``ripple_processor_late_events_total`` of the worker on ``port``, by window."""
    metric = "ripple_processor_late_events_total"
    text = _scrape(port)
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(metric + "{"):
            labels, value = line[len(metric) + 1 :].rsplit("} ", 1)
            window = dict(kv.split("=", 1) for kv in labels.split(","))["window"].strip('"')
            out[window] = out.get(window, 0.0) + float(value)
    return out


def windows_closed(port: int, window: str) -> float | None:
    """Windows of size ``window`` the worker's rollup has made final, or None while it is not up."""
    metric = "ripple_processor_windows_closed_total{"
    try:
        text = _scrape(port)
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(metric) and f'window="{window}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0
