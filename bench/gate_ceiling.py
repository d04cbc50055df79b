"""The singleton gate's CPU ceiling: events/s through its per-batch work on one core.

    .venv/bin/python bench/gate_ceiling.py [--events 300000] [--batch 5000]

Every event of a namespace passes one gate (one global event-time watermark, METRICS.md),
so the gate's own work bounds the namespace's throughput whatever the number of workers.
This measures that work without Kafka: decode + validate, watermark and lateness, routing
to partitions (``GateStep.add``) and packing each batch's per-partition output
(``wire.pack``), on the demo's realistic mix. Kafka I/O comes on top (see
bench/processors.py for one worker end to end).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.history import HistorySpec, generate  # noqa: E402
from processors.core.gate import GateStep  # noqa: E402
from processors.wire import GateBatch, pack  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=5000, help="events per gate batch")
    ap.add_argument("--partitions", type=int, default=6)
    args = ap.parse_args()
    spec = HistorySpec(hours=args.events / 100 / 60 + 1, social_per_minute=60, web_per_minute=40)
    events = list(itertools.islice(generate(spec), args.events))
    wm = max_ts = float("-inf")
    t0 = time.perf_counter()
    for i in range(0, len(events), args.batch):
        step = GateStep(args.partitions, 600.0, watermark=wm, max_ts=max_ts)
        for raw in events[i : i + args.batch]:
            step.add(raw)
        wm, max_ts = step.wm, step.max_ts
        for items in step.out:
            pack(GateBatch(wm, False, max_ts, items))  # type: ignore[arg-type]
    took = time.perf_counter() - t0
    n = len(events)
    print(f"gate CPU path: {n:,} events in {took:.2f}s = {n / took:,.0f} events/s "
          f"({took / n * 1e6:.1f} us/event, batches of {args.batch})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
