"""Run the processors' pure core in-process: gate step → partition states → rollup.

No faust, no broker: the same functions the streaming job runs (``GateStep``,
``PartitionState`` through ``resolve.feed``, ``Rollup``), over a list of canonical event
lines in stream order. It gives the results rows a replay gives (every window, last
revision, alert transitions included), in seconds, so the pure core is testable and
benchmarkable apart from Kafka.

    python -m processors.harness --config c.toml --input events.jsonl --out results.jsonl
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ingest.config import Config, load_config
from processors.core.compiled import Compiled
from processors.core.gate import GateStep
from processors.core.resolve import PartitionState, feed
from processors.core.results import Row, dumps, identity, sort_key
from processors.core.rollup import Rollup, alert_row
from processors.core.stream_alerts import rules_of

INF = float("inf")


@dataclass
class Timings:
    """Seconds spent in each stage (for bench/core.py)."""

    gate: float = 0.0
    partitions: float = 0.0
    rollup: float = 0.0


class _Batch:
    """What ``resolve.feed`` reads of a gate batch."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items


def run(
    config: Config, lines: Iterable[bytes], partitions: int = 6, timings: Timings | None = None
) -> list[Row]:
    """Every results row of the stream, sorted as the results file is."""
    ctx = Compiled(config)
    proc = config.processing
    step = GateStep(
        partitions,
        ctx.lateness,
        max_event_bytes=config.kafka.max_event_bytes,
        max_future=float(proc.max_future_seconds),
        excluded=ctx.excluded,
    )
    t0 = time.perf_counter()
    for raw in lines:
        step.add(raw)
    t1 = time.perf_counter()
    rollup = Rollup(partitions, ctx.tracker.brands, ctx.lateness, rules_of(config))
    out: dict[tuple[str, str, str, str], Row] = {}
    for p in range(partitions):
        st = PartitionState(ctx.tracker, ctx.classifier, ctx.settings, ctx.scorer)
        closed, _ = feed(st, _Batch([tuple(i) for i in step.out[p]]))  # type: ignore[arg-type]
        closed += st.advance(INF)
        for size, start, partial in closed:
            rollup.add_partial(p, size, start, partial)
        rollup.mark(p, INF, step.max_ts)
    t2 = time.perf_counter()
    rows, alerts = rollup.finalize()
    if timings is not None:
        timings.gate += t1 - t0
        timings.partitions += t2 - t1
        timings.rollup += time.perf_counter() - t2
    for r in rows + [alert_row(*a) for a in alerts]:
        out[identity(r)] = r
    return sorted(out.values(), key=sort_key)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m processors.harness",
        description="Compute a stream's results with the processors' pure core, in-process.",
    )
    ap.add_argument("--config", help="tracking configuration (TOML)")
    ap.add_argument("--input", required=True, help="canonical events, JSON Lines")
    ap.add_argument("--out", help="results file to write (default: print a summary)")
    ap.add_argument("--partitions", type=int, default=6)
    args = ap.parse_args(argv)
    config = load_config(args.config)
    with open(args.input, "rb") as fh:
        lines = [line.rstrip(b"\r\n") for line in fh if line.strip()]
    started = time.perf_counter()
    rows = run(config, lines, args.partitions)
    took = time.perf_counter() - started
    if args.out:
        with open(args.out, "wb") as fh:
            fh.writelines(dumps(r) + b"\n" for r in rows)
    print(
        f"{len(lines)} events → {len(rows)} rows in {took:.2f} s "
        f"({len(lines) / took if took else 0:,.0f} events/s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
