"""What the benchmarks read of a worker's /metrics."""

from __future__ import annotations

import urllib.request


def _scrape(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()


def watermark(port: int) -> float | None:
    """The worker's event-time watermark, or None while it is not up."""
    try:
        text = _scrape(port)
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("ripple_processor_watermark_timestamp_seconds{"):
            return float(line.rsplit(" ", 1)[1])
    return None


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
