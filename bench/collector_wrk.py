"""Load the website collector with wrk on loopback, then count that every accepted event is
in Kafka.

Starts a throwaway stack (Apache Kafka only) on free ports in a temporary dir, one
collector process (``ripple ingest web``, rate limit raised), runs wrk with
``bench/collector.lua`` (a unique nonce per event), then reads ``<ns>.events`` back and
compares the number of distinct ids with the events the collector accepted (2xx).

    .venv/bin/python bench/collector_wrk.py [--duration 20] [--connections 16] [--threads 1]
                                            [--batch 1] [--batch 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deploy.stack.local import LocalStack  # noqa: E402
from deploy.stack.ports import free_port  # noqa: E402
from deploy.stack.topics import TopicSpec, ensure_topics  # noqa: E402
from ingest.config import load_config  # noqa: E402
from ingest.kafka_client import client_options  # noqa: E402


def stack_config(state: Path, namespace: str, collector_port: int) -> Path:
    kafka = free_port()
    text = f"""
[kafka]
bootstrap = "127.0.0.1:{kafka}"
namespace = "{namespace}"
partitions = 6
[stack]
state_dir = "{state}"
kafka_port = {kafka}
kafka_controller_port = {free_port()}
prometheus_port = {free_port()}
alertmanager_port = {free_port()}
worker_web_port = {free_port()}
collector_port = {collector_port}
[[sites]]
name = "acme.com"
domains = ["acme.com", "www.acme.com"]
[collector]
port = {collector_port}
rate_per_second = 10000000.0
rate_burst = 10000000
spool_path = "{state}/spool/web.spool"
"""
    path = state / "ripple.toml"
    path.write_text(text)
    return path


def count_ids(bootstrap: str, topic: str) -> tuple[int, int]:
    """(records, distinct ids) in ``topic``."""
    consumer = KafkaConsumer(**client_options(bootstrap, "kafka-python"), enable_auto_commit=False)
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    end = consumer.end_offsets(parts)
    ids: set[str] = set()
    records = 0
    while any(consumer.position(tp) < end[tp] for tp in parts):
        for msgs in consumer.poll(timeout_ms=1000, max_records=10000).values():
            for m in msgs:
                records += 1
                ids.add(json.loads(m.value)["id"])
    consumer.close()
    return records, len(ids)


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("collector exited during start-up")
        try:
            if httpx.get(url + "/healthz", timeout=1).json().get("status") == "ok":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("collector not healthy")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (load-independent cost measure)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, args: argparse.Namespace, batch: int) -> dict[str, int]:
    cmd = [
        "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
        "-s", str(REPO / "bench" / "collector.lua"), url + "/e",
    ]  # fmt: skip
    env = {
        **os.environ,
        "RIPPLE_BATCH": str(batch),
        "RIPPLE_ORIGIN": "https://www.acme.com",
        "RIPPLE_RUN": uuid.uuid4().hex[:8],  # nonces unique across runs
    }
    print(f"$ RIPPLE_BATCH={batch} {' '.join(cmd)}", flush=True)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    print(out, flush=True)
    line = next(x for x in out.splitlines() if x.startswith("RIPPLE "))
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--batch", type=int, action="append", help="events per request (repeatable)"
    )
    parser.add_argument("--linger-ms", type=int, default=2, help="the collector's producer linger")
    args = parser.parse_args()
    batches = args.batch or [1, 10]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    state = Path(tempfile.mkdtemp(prefix="ripple-bench-"))
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    port = free_port()
    config_path = stack_config(state, namespace, port)
    config = load_config(config_path, env={})
    stack = LocalStack(config)
    results = []
    try:
        stack.up(services=False)
        topic = f"{namespace}.events"
        ensure_topics(
            config.kafka.bootstrap, [TopicSpec(topic, 6, {}), TopicSpec(f"{namespace}.dlq", 1, {})]
        )
        log = open(state / "collector.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", "ingest", "web", "--config", str(config_path),
             "--linger-ms", str(args.linger_ms)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, proc)
            accepted_total = 0
            for batch in batches:
                cpu = cpu_seconds(proc.pid)
                r = run_wrk(url, args, batch)
                cpu_us = (cpu_seconds(proc.pid) - cpu) * 1e6 / max(1, r["requests"])
                accepted = (r["requests"] - r["non2xx"]) * batch
                accepted_total += accepted
                seconds = r["duration_us"] / 1e6
                results.append(
                    f"batch={batch:>3}  requests/s={r['requests'] / seconds:8.0f}  "
                    f"events/s={accepted / seconds:8.0f}  p50={r['p50_us'] / 1000:.1f}ms  "
                    f"p90={r['p90_us'] / 1000:.1f}ms  p99={r['p99_us'] / 1000:.1f}ms  "
                    f"non-2xx={r['non2xx']}  socket errors={r['connect'] + r['read'] + r['write'] + r['timeout']}  "
                    f"collector CPU/request={cpu_us:.0f}us ({cpu_us / batch:.0f}us/event)"
                )
        finally:
            proc.terminate()
            proc.wait(60)
            log.close()
        records, distinct = count_ids(config.kafka.bootstrap, topic)
        load = os.getloadavg()
        print("\n".join(results))
        print(
            f"accepted events (2xx x batch): {accepted_total}; in {topic}: {records} records, "
            f"{distinct} distinct ids -> "
            + ("OK" if records == distinct and distinct >= accepted_total else "MISMATCH")
            + f" ({distinct - accepted_total} more: requests in flight when wrk stopped)"
        )
        print(
            f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
        )
        return 0 if distinct >= accepted_total else 1
    finally:
        stack.down(purge=True)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
