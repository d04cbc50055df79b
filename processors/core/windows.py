"""Event-time tumbling windows (METRICS.md): UTC-aligned 1m and 1h, half-open [start, end).

A window closes when the largest event time seen reaches ``end + allowed lateness``; an
event whose window has closed is late and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

SIZES: dict[str, int] = {"1m": 60, "1h": 3600}
LATE_1M = 1
LATE_1H = 2
LATE_BITS = {"1m": LATE_1M, "1h": LATE_1H}


def window_start(ts: float, size: int) -> int:
    return int(ts // size) * size


def is_closed(end: float, watermark: float, lateness: float) -> bool:
    return watermark >= end + lateness


def late_flags(ts: float, watermark: float, lateness: float) -> int:
    """Bit set of the window sizes for which an event at ``ts`` arrives too late."""
    flags = 0
    for name, size in SIZES.items():
        if is_closed(window_start(ts, size) + size, watermark, lateness):
            flags |= LATE_BITS[name]
    return flags


@lru_cache(maxsize=65536)
def iso(t: float) -> str:
    """Window boundary in the results file's format: ``2026-11-20T10:15:00Z``."""
    return datetime.fromtimestamp(int(t), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
