"""The processors' CPU path without Kafka: the in-process harness (processors.harness).

    .venv/bin/python bench/core.py [--events 200000] [--profile]

Times the gate step (decode, bounds, watermark, routing) and the partition states plus
rollup (dedupe, matching, sentiment, joins, windows, rows) over the benchmark's event mix
(bench/processors.py's), and prints microseconds per event for each. ``--profile`` prints
the top functions by cumulative time (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
import tomllib
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.history import DEMO_CONFIG, HistorySpec, generate  # noqa: E402
from ingest.config import Config  # noqa: E402
from processors import harness  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    per_minute = 1400
    spec = HistorySpec(hours=args.events / per_minute / 60, social_per_minute=per_minute * 0.6,
                       web_per_minute=per_minute * 0.4, seed=11)  # fmt: skip
    lines = list(generate(spec))
    config = msgspec.convert(tomllib.loads(DEMO_CONFIG), Config)
    timings = harness.Timings()
    prof = cProfile.Profile() if args.profile else None
    started = time.perf_counter()
    if prof:
        prof.enable()
    rows = harness.run(config, lines, args.partitions, timings=timings)
    if prof:
        prof.disable()
    took = time.perf_counter() - started
    n = len(lines)
    print(f"{n} events, {len(rows)} result rows in {took:.1f} s: {n / took:,.0f} events/s")
    print(f"gate step        {timings.gate / n * 1e6:6.2f} µs/event")
    print(f"partitions       {timings.partitions / n * 1e6:6.2f} µs/event")
    print(f"rollup           {timings.rollup / n * 1e6:6.2f} µs/event")
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
