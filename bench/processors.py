"""Processors benchmark: raw aiokafka consumption vs one worker end to end.

    .venv/bin/python bench/processors.py --bootstrap 127.0.0.1:19092 [--events 1000000]

Generates a realistic mix (60% social, 40% web), loads it into ``bench.events``, then
measures (a) raw aiokafka ``getmany`` consumption of that topic and (b) one ``ripple
worker`` processing it end to end (gate, resolve, rollup, all metrics) until every window
is final. Prints events/s for both, their ratio, the worker's peak RSS and how many events
arrived late (late events skip the work, so a run where many are late measures less).

``bench.events`` has one partition by default, as a replay's: the worker reads the mix in
its order and no event is late. With ``--events-partitions 6`` the gate reads the
partitions' chunks one after another, the watermark runs ahead, and about 70% of the
events are late for every window: the figure then says little about the processors.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.worker_metrics import late_events  # noqa: E402
from deploy.commands.replay import free_port  # noqa: E402
from deploy.history import DEMO_CONFIG, HistorySpec, generate  # noqa: E402
from deploy.stack.proctree import tree_memory_mib  # noqa: E402
from ingest.kafka_client import client_options  # noqa: E402
from ingest.topics import Topics  # noqa: E402
from processors.history.replay import collect_results, produce_lines, request_flush  # noqa: E402
from processors.job.topology import delete_namespace, ensure_topics  # noqa: E402
from processors.wire import COMPLETE_KEY  # noqa: E402

NS = "bench"


async def raw_consume(bootstrap: str, topic: str, expected: int) -> float:
    consumer = AIOKafkaConsumer(**client_options(bootstrap, "aiokafka"), enable_auto_commit=False,
                                max_partition_fetch_bytes=8 << 20, fetch_max_bytes=32 << 20)  # fmt: skip
    await consumer.start()
    try:
        meta = KafkaConsumer(**client_options(bootstrap, "kafka-python"))
        parts = meta.partitions_for_topic(topic) or set()
        meta.close()
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        n = 0
        started = last_progress = time.perf_counter()
        while n < expected:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10000)
            got = sum(len(v) for v in batch.values())
            n += got
            now = time.perf_counter()
            if got:
                last_progress = now
            elif now - last_progress > 15:
                print(f"raw consumption stalled at {n} of {expected} records", file=sys.stderr)
                break
        return n / (last_progress - started)
    finally:
        await consumer.stop()


def record_time(bootstrap: str, topic: str, first: bool, key: bytes | None = None) -> float:
    """Kafka timestamp (s) of the first record of a topic, or of the record with ``key``."""
    c = KafkaConsumer(
        **client_options(bootstrap, "kafka-python"),
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    parts = c.partitions_for_topic(topic) or set()
    c.assign([TopicPartition(topic, p) for p in parts])
    best = float("inf") if first else 0.0
    for rec in c:
        if first:
            best = min(best, rec.timestamp / 1000)
        elif rec.key == key:
            best = rec.timestamp / 1000
    c.close()
    return best


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--partitions", type=int, default=6, help="the stateful stage's partitions")
    ap.add_argument("--events-partitions", type=int, default=1,
                    help="partitions of bench.events (default 1: in order, as a replay)")  # fmt: skip
    ap.add_argument("--one-process", action="store_true",
                    help="run the gate inside the worker's process ([processing] gate_process = false)")  # fmt: skip
    args = ap.parse_args()

    per_minute = 1400
    spec = HistorySpec(hours=args.events / per_minute / 60, social_per_minute=per_minute * 0.6,
                       web_per_minute=per_minute * 0.4, seed=11)  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="ripple-bench-"))
    cfg = tmp / "bench.toml"
    cfg.write_text(
        f'[kafka]\nbootstrap = "{args.bootstrap}"\npartitions = {args.partitions}\n\n'
        + f"[processing]\ngate_process = {'false' if args.one_process else 'true'}\n\n"
        + DEMO_CONFIG
    )

    delete_namespace(args.bootstrap, NS)
    ensure_topics(args.bootstrap, NS, args.partitions, args.events_partitions)
    t = time.perf_counter()
    n = produce_lines(args.bootstrap, NS, generate(spec))
    print(f"loaded {n} events into {Topics(NS).events} in {time.perf_counter() - t:.1f}s")

    raw = asyncio.run(raw_consume(args.bootstrap, Topics(NS).events, n))
    print(f"(a) raw aiokafka getmany: {raw:,.0f} events/s")

    request_flush(args.bootstrap, NS)
    cmd = [sys.executable, "-m", "deploy.cli", "worker", "--config", str(cfg), "--namespace", NS,
           "--web-port", str(port := free_port()), "--state-dir", str(tmp / "state"), "--loglevel", "warning"]  # fmt: skip
    log = (tmp / "worker.log").open("wb")
    worker = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        rows = collect_results(
            args.bootstrap, NS, timeout=3600, alive=lambda: worker.poll() is None
        )
        rss = tree_memory_mib(worker.pid, "VmHWM")
        late = late_events(port)
    finally:
        worker.terminate()
        worker.wait(30)
    began = record_time(args.bootstrap, Topics(NS).internal("batches"), first=True)
    ended = record_time(args.bootstrap, Topics(NS).results, first=False, key=COMPLETE_KEY)
    rate = n / (ended - began)
    print(
        f"(b) one worker end to end: {rate:,.0f} events/s ({ended - began:.1f}s, {len(rows)} result rows)"
    )
    print(f"ratio (b)/(a): {rate / raw:.2f}")
    shown = ", ".join(f"{w} {v:,.0f} ({v / n:.0%})" for w, v in sorted(late.items()))
    print(f"late events (they skip the work): {shown or 'none'}")
    print(f"worker peak RSS (with its gate process): {rss:.0f} MiB")
    print(f"worker log: {tmp / 'worker.log'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
