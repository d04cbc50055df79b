"""Live latency: from Kafka's ack of an event to the worker's /metrics counting it.

    .venv/bin/python bench/latency.py --bootstrap 127.0.0.1:19092 [--rate 5000] [--seconds 60]

Starts one ``ripple worker`` on the namespace ``latency``, produces pageviews at a steady
``--rate`` events/s (event time = now), and samples twice a second: the number of events
acknowledged so far and when. A poller scrapes the worker's ``/metrics`` every 20 ms; a
sample's latency is the time from its ack until ``ripple_smo_pageviews_total`` reaches its
count. Prints p50 / p99 / max. Target (issue 10): p99 <= 1 s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import orjson
from kafka import KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.commands.replay import free_port  # noqa: E402
from ingest.kafka_client import client_options  # noqa: E402
from processors.job.topology import delete_namespace, ensure_topics  # noqa: E402

NS = "latency"
SITE = "latency.example"


def counted(port: int) -> float | None:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
    except OSError:
        return None
    for line in text.decode().splitlines():
        if line.startswith("ripple_smo_pageviews_total{") and f'site="{SITE}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def pageview(i: int) -> bytes:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return orjson.dumps(
        {"v": 1, "id": f"web:lat{i}", "kind": "pageview", "platform": "web", "ts": now,
         "ingested_at": now, "site": SITE, "url": f"https://{SITE}/", "session": f"s{i % 997}"}
    )  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--partitions", type=int, default=6)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ripple-latency-"))
    cfg = tmp / "latency.toml"
    cfg.write_text(f'[kafka]\nbootstrap = "{args.bootstrap}"\npartitions = {args.partitions}\n'
                   f'[[sites]]\nname = "{SITE}"\n')  # fmt: skip
    delete_namespace(args.bootstrap, NS)
    ensure_topics(args.bootstrap, NS, args.partitions, args.partitions)
    port = free_port()
    cmd = [sys.executable, "-m", "deploy.cli", "worker", "--config", str(cfg), "--namespace", NS,
           "--web-port", str(port), "--state-dir", str(tmp / "state"), "--loglevel", "warning"]  # fmt: skip
    worker = subprocess.Popen(cmd, stdout=(tmp / "worker.log").open("wb"), stderr=subprocess.STDOUT)
    producer = KafkaProducer(**client_options(args.bootstrap, "kafka-python"), acks="all",
                             linger_ms=2)  # fmt: skip
    samples: list[tuple[int, float]] = []  # (events acked so far, when)
    latencies: list[float] = []
    done = threading.Event()
    try:
        # Warm up until the worker counts (partition assignment, recovery).
        producer.send(f"{NS}.events", pageview(-1)).get(60)
        deadline = time.monotonic() + 120
        while (counted(port) or 0) < 1:
            if time.monotonic() > deadline or worker.poll() is not None:
                print("the worker never counted the warm-up event", file=sys.stderr)
                return 1
            time.sleep(0.1)

        def poll() -> None:
            pending = 0
            while not done.is_set() or pending < len(samples):
                value = counted(port)
                now = time.monotonic()
                while value is not None and pending < len(samples) and value >= samples[pending][0]:
                    latencies.append(now - samples[pending][1])
                    pending += 1
                if done.is_set() and now - samples[-1][1] > 30:
                    break
                time.sleep(0.02)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        sent = 1
        started = time.monotonic()
        next_sample = started + 0.5
        while (now := time.monotonic()) - started < args.seconds:
            due = int((now - started) * args.rate) + 1
            futures = [producer.send(f"{NS}.events", pageview(i)) for i in range(sent, due)]
            sent = max(sent, due)
            if now >= next_sample and futures:
                futures[-1].get(30)  # acked: every record before it on its partition is too
                producer.flush()
                samples.append((sent, time.monotonic()))
                next_sample = now + 0.5
            time.sleep(0.002)
        producer.flush()
        done.set()
        poller.join(60)
    finally:
        producer.close()
        worker.terminate()
        worker.wait(60)
    if not latencies:
        print("no sample was counted", file=sys.stderr)
        return 1
    latencies.sort()
    pct = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    print(
        f"{sent:,} events at {args.rate:,.0f}/s for {args.seconds:.0f} s; {len(latencies)} samples"
    )
    print(f"ack -> /metrics: p50 {pct(0.5):.3f} s, p99 {pct(0.99):.3f} s, max {latencies[-1]:.3f} s "
          f"(target p99 <= 1 s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
