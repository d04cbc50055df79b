"""A broker of a three-node cluster dies (SIGKILL) mid-replay and comes back: the replay's
results still equal the oracle, and a live collector under load during the same kill loses
no event it answered 2xx. Topics have three replicas, two in sync (kafka.replication_factor,
kafka.min_insync_replicas). Prints how long the pipeline paused at the failover."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploy.stack.kafka import Kafka, KafkaError, KafkaSpec, Node
from deploy.stack.paths import StatePaths
from deploy.stack.ports import free_port
from deploy.stack.topics import TopicSpec, ensure_topics
from ingest.config import load_config
from ingest.kafka_client import KafkaAccess
from ingest.topics import Topics
from ingest.web.wire import event_id
from tests.ingest.web.helpers import BROWSER, ORIGIN, SITE, read_topic, run_collector
from tests.processors.job.test_replay import assert_same_rows, rows
from tests.reference.dataset import generate
from tests.reference.oracle import compute_results

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kafka]:
    d = tmp_path_factory.mktemp("cluster")
    for attempt in range(3):  # a free port can be taken before a broker binds it
        nodes = tuple(Node(i, f"kafka-{i}", free_port(), free_port()) for i in (1, 2, 3))
        kafka = Kafka(
            KafkaSpec(partitions=3, heap="384m", node_list=nodes),
            StatePaths.at(d / f"state-{attempt}"),
        )
        try:
            kafka.start(120)
            break
        except KafkaError:
            kafka.stop()
            if attempt == 2:
                raise
    try:
        yield kafka
    finally:
        kafka.stop()


class EndOffsets(threading.Thread):
    """Samples the summed end offsets of a topic every 50 ms: when the pipeline moves."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic = bootstrap, topic
        self.samples: list[tuple[float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap.split(","))
        try:
            while not self.done.is_set():
                try:
                    parts = consumer.partitions_for_topic(self.topic)
                    if parts:
                        ends = consumer.end_offsets([TopicPartition(self.topic, p) for p in parts])
                        self.samples.append((time.monotonic(), sum(ends.values())))
                except Exception:  # a broker away: the next sample tells
                    pass
                time.sleep(0.05)
        finally:
            consumer.close()

    def total(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def longest_stall(self, since: float, until: float) -> float:
        """The longest time in [since, until] in which the topic did not grow."""
        moves = [since] + [
            t for (t, n), (_, m) in zip(self.samples[1:], self.samples, strict=False) if n > m
        ]
        moves = [t for t in moves if since <= t <= until] + [until]
        return max(b - a for a, b in zip(moves, moves[1:], strict=False))


def leader_of(bootstrap: str, topic: str, partition: int = 0) -> int:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        (desc,) = admin.describe_topics([topic])
        return next(p["leader_id"] for p in desc["partitions"] if p["partition_index"] == partition)
    finally:
        admin.close()


def replication_of(bootstrap: str, topics: list[str]) -> dict[str, set[int]]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        return {
            d["name"]: {len(p["replica_nodes"]) for p in d["partitions"]}
            for d in admin.describe_topics(topics)
        }
    finally:
        admin.close()


async def post_until(
    client: httpx.AsyncClient, stop: asyncio.Event, accepted: set[str], statuses: Counter[int]
) -> None:
    """Eight concurrent posters of unique pageviews until ``stop``; ids answered 2xx kept."""
    counter = iter(range(10**9))

    async def poster() -> None:
        while not stop.is_set():
            i = next(counter)
            body = {"kind": "pageview", "site": SITE, "url": f"https://acme.com/p/{i}",
                    "session": f"s{i % 89}", "nonce": f"n{i}"}  # fmt: skip
            try:
                r = await client.post("/e", content=json.dumps(body), headers={"origin": ORIGIN})
            except httpx.HTTPError:
                statuses[0] += 1
                continue
            statuses[r.status_code] += 1
            if 200 <= r.status_code < 300:
                accepted.add(event_id(SITE, f"s{i % 89}", f"n{i}"))

    await asyncio.gather(*(poster() for _ in range(8)))


async def test_broker_killed_mid_replay_and_under_collector_load(
    cluster: Kafka, tmp_path: Path
) -> None:
    boot = cluster.bootstrap
    tracking, lines = generate(seed=10)
    ns, web_ns = f"fo{uuid.uuid4().hex[:8]}", f"fw{uuid.uuid4().hex[:8]}"
    cfg = tmp_path / "ripple.toml"
    cfg.write_text(f"""\
[kafka]
bootstrap = "{boot}"
partitions = 3
replication_factor = 3
min_insync_replicas = 2

[stack]
state_dir = "{tmp_path / "state"}"

[processing]
gate_batch_records = 250

{tracking}
""")
    expected = compute_results(lines, load_config(cfg))
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    replicated = KafkaAccess(boot, replication_factor=3, min_insync_replicas=2)
    ensure_topics(replicated, [TopicSpec(f"{web_ns}.events", 3), TopicSpec(f"{web_ns}.dlq", 1)])

    batches = EndOffsets(boot, Topics(ns).internal("batches"))
    batches.start()
    accepted: set[str] = set()
    statuses: Counter[int] = Counter()
    stop_posting = asyncio.Event()
    collector_dir = tmp_path / "collector"
    collector_dir.mkdir()
    settings = {"rate_per_second": 1_000_000.0, "rate_burst": 1_000_000}
    with run_collector(collector_dir, boot, web_ns, **settings) as collector:
        async with httpx.AsyncClient(base_url=collector.url, timeout=60, headers=BROWSER) as client:
            posting = asyncio.create_task(post_until(client, stop_posting, accepted, statuses))
            cmd = [sys.executable, "-m", "deploy.cli", "replay", "--config", str(cfg),
                   "--input", str(events), "--namespace", ns, "--out", str(tmp_path / "out.jsonl"),
                   "--timeout", "300"]  # fmt: skip
            replay = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env=dict(os.environ))  # fmt: skip
            # Mid-replay: the gate has written some batches, far from all.
            deadline = time.monotonic() + 120
            while batches.total() < 20:
                assert replay.poll() is None, replay.communicate()[1][-3000:]
                assert time.monotonic() < deadline, "the replay did not start"
                await asyncio.sleep(0.05)
            leader = leader_of(boot, Topics(ns).events)
            victim = next(n for n in cluster.nodes if n.node.node_id == leader)
            at_kill = batches.total()
            killed = time.monotonic()
            victim.kill()
            # Failover: the pipeline goes on with two brokers, before the third is back.
            deadline = time.monotonic() + 60
            while batches.total() <= at_kill + 5 and replay.poll() is None:
                assert time.monotonic() < deadline, "no progress within 60s of the kill"
                await asyncio.sleep(0.05)
            resumed = time.monotonic()
            # The broker is restarted while the replay still runs (it rejoins mid-stream);
            # how long the rest takes varies with the machine's load, so no waiting here.
            assert replay.poll() is None, "the replay ended before the broker came back"
            await asyncio.to_thread(cluster.start, 120)  # the killed node only
            restarted = time.monotonic()
            out, err = await asyncio.to_thread(replay.communicate, timeout=300)
            finished = time.monotonic()
            stop_posting.set()
            await posting
            # The collector delivers what it spooled, then reports ok.
            for _ in range(600):
                health = (await client.get("/healthz")).json()
                if health["status"] == "ok" and not health.get("spooled_records"):
                    break
                await asyncio.sleep(0.1)
            assert health["status"] == "ok", (health, collector.log()[-3000:])
    batches.done.set()
    batches.join(5)

    assert replay.returncode == 0, err[-3000:]
    assert at_kill < batches.total() / 2, "the kill was not mid-replay"
    assert_same_rows(rows(tmp_path / "out.jsonl"), expected)
    records = await read_topic(boot, f"{web_ns}.events", min_count=len(accepted), timeout=120)
    got = Counter(r.json()["id"] for r in records)
    lost = accepted - set(got)
    assert not lost, f"{len(lost)} of {len(accepted)} accepted events lost"
    reps = replication_of(boot, [Topics(ns).events, Topics(ns).internal("batches"),
                                 f"ripple-{ns}-itemlog-changelog", f"{web_ns}.events"])  # fmt: skip
    assert all(r == {3} for r in reps.values()), reps

    pause = batches.longest_stall(killed - 0.5, resumed)
    before = batches.longest_stall(killed - 5, killed - 0.5)
    print(
        f"\nfailover: killed kafka-{victim.node.node_id} (leader of {Topics(ns).events}) "
        f"{killed - batches.samples[0][0]:.1f}s into the replay; the gate's output paused "
        f"{pause:.1f}s (longest pause in the 5s before: {before:.1f}s) and resumed "
        f"{resumed - killed:.1f}s after the kill, with two brokers; replay finished "
        f"{finished - restarted:.1f}s after the restart; collector: {len(accepted)} events "
        f"accepted, {dict(statuses)} statuses, {sum(n > 1 for n in got.values())} duplicates"
    )
