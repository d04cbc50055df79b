"""A replay's 1m window counts as OpenMetrics, for ``promtool tsdb create-blocks-from``.

The input is each final 1m window's ``WindowCounts`` (``processors.wire``): the very values
the live counters advance by (``processors.core.counters.window_counts``), so every SMM and SMO
counter of the catalogue is backfilled, amplification's reshares and amplifiable posts
included (no result row carries those), labelled ``namespace`` plus its labels, and the
dashboards show a replayed namespace like a live one. A series starts at 0 at the start of its first
window (so ``increase()`` over the replay equals the results' sum) and then has one sample at
every 1m window end up to the replay's last, holding the sum of the window values so far: a
live counter is scraped between increments too, and ``rate()`` needs those samples to show
0 rather than nothing. promtool's rules are kept: every sample has a timestamp, a series'
samples are in time order, ``# EOF`` ends the file; samples after ``not_after`` (Prometheus
must not be backfilled within its head block, the last ~3 hours) are left out and counted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

from ingest.events import parse_ts
from ingest.metricdefs import MetricDef
from processors.catalogue import NS, RESULT_COUNTERS, SMM_METRICS, SMO_METRICS
from processors.core.results import Row
from processors.wire import WindowCounts

WINDOW = "1m"
FILL = 6 * 3600  # seconds of flat samples after a window with data (then the series rests)
STEP = 60
HEAD_BLOCK_SECONDS = 3 * 3600  # what Prometheus may still be writing: never backfill it


@dataclass
class BackfillStats:
    series: int = 0
    samples: int = 0
    skipped_recent: int = 0  # samples newer than ``not_after``
    first: float | None = None  # oldest sample written
    last: float | None = None  # newest sample written


SeriesKey = tuple[str, tuple[str, ...]]  # (metric name, label values in the def's order)


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


COUNTERS: dict[str, MetricDef] = {d.name: d for d in (*SMM_METRICS, *SMO_METRICS)}


def window_values(
    windows: Iterable[WindowCounts], namespace: str
) -> dict[SeriesKey, dict[int, float]]:
    """Per series, window end -> that window's value."""
    out: dict[SeriesKey, dict[int, float]] = defaultdict(dict)
    for w in windows:
        end = w.start + STEP
        for name, labels, value in w.counts:
            defn = COUNTERS.get(name)
            if defn is None or len(labels) != len(defn.labels) - 1:
                raise ValueError(f"{name}{labels}: not a counter of the catalogue")
            it = iter(labels)
            values = tuple(namespace if n == NS else next(it) for n in defn.labels)
            out[(name, values)][end] = value
    return out


def counts_of_rows(rows: Iterable[Row]) -> list[WindowCounts]:
    """``WindowCounts`` from 1m result rows of the metrics a row carries as a count (the
    results file alone: no reshares or amplifiable posts in it; tests, hand-made rows)."""
    by_start: dict[int, list[tuple[str, list[str], float]]] = defaultdict(list)
    for r in rows:
        defn = RESULT_COUNTERS.get(r["metric"])
        if defn is None or r["window"] != WINDOW:
            continue
        names = [n for n in defn.labels if n != NS]
        if sorted(r["labels"]) != sorted(names):
            raise ValueError(f"{r['metric']} row labels {sorted(r['labels'])} are not {names}")
        start = int(parse_ts(r["window_start"]))
        by_start[start].append((defn.name, [str(r["labels"][n]) for n in names], r["value"]))
    return [WindowCounts(start, counts) for start, counts in sorted(by_start.items())]


def number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def write_openmetrics(
    windows: Iterable[WindowCounts], namespace: str, out: IO[str], not_after: float | None = None
) -> BackfillStats:
    """Write the OpenMetrics text of ``windows`` to ``out``; see the module doc."""
    stats = BackfillStats()
    per_series = window_values(windows, namespace)
    ends = [e for values in per_series.values() for e in values]
    last_end = max(ends, default=0)

    def sample(name: str, labels: str, t: int, v: float) -> None:
        if not_after is not None and t > not_after:
            stats.skipped_recent += 1
            return
        out.write(f"{name}{{{labels}}} {number(v)} {t}\n")
        stats.samples += 1
        stats.first = t if stats.first is None else min(stats.first, t)
        stats.last = t if stats.last is None else max(stats.last, t)

    for name in sorted({k[0] for k in per_series}):
        defn = COUNTERS[name]
        family = name.removesuffix("_total")
        out.write(f"# HELP {family} {escape(defn.help)}\n# TYPE {family} counter\n")
        for key in sorted(k for k in per_series if k[0] == name):
            at_end = per_series[key]
            labels = ",".join(
                f'{n}="{escape(v)}"' for n, v in zip(defn.labels, key[1], strict=True)
            )
            first_end = min(at_end)
            stats.series += 1
            total: float = 0
            sample(name, labels, first_end - STEP, 0)
            # A sample every minute keeps rate() continuous, but only up to FILL after each
            # window with data: loops run over data, never over a span of event time (one
            # row dated 2999 must not mean a sample for every minute until then).
            points = sorted(at_end)
            for i, t in enumerate(points):
                total += at_end[t]
                sample(name, labels, t, total)
                nxt = points[i + 1] if i + 1 < len(points) else last_end + STEP
                for u in range(t + STEP, min(nxt, t + FILL), STEP):
                    sample(name, labels, u, total)
    out.write("# EOF\n")
    return stats
