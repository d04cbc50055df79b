"""Resolve's item log on the real broker: references to ``<ns>.proc.batches`` records,
trimmed with delete-records as the watermark passes every retention, and a worker that
starts with an empty disk rebuilds from the trimmed topic to the very same results as a
replay that never stopped (short retentions: the in-process harness expires its indices
by the hour, the worker's on-disk ones to the second, both within METRICS.md's "at
least")."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from ingest.config import load_config
from ingest.topics import Topics
from processors.history.replay import collect_results, produce_lines, request_flush
from processors.job.topology import delete_namespace, ensure_topics
from tests.processors.job.test_replay import _stop, _worker, assert_same_rows, rows, run_replay
from tests.reference.dataset import generate

pytestmark = pytest.mark.integration

# Short retentions and tiny gate batches: the log is pruned many times within the dataset.
SETTINGS = """
[processing]
gate_batch_records = 10
dedupe_seconds = 600
target_retention_seconds = 900
"""


def first_offsets(bootstrap: str, topic: str, partitions: int) -> list[int]:
    c = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        begin = c.beginning_offsets(tps)
        return [begin[tp] for tp in tps]
    finally:
        c.close()


def test_trimmed_item_log_rebuilds_to_the_same_results(
    stack,
    namespace: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    tracking, lines = generate(seed=10)
    cfg = tmp_path / "ripple.toml"
    cfg.write_text(stack.config_path.read_text() + "\n" + tracking + "\n" + SETTINGS)
    config = load_config(cfg)
    parts = config.kafka.partitions
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    straight = tmp_path / "straight.jsonl"
    run_replay(cfg, events, f"{namespace}x", straight, "--events-partitions", "1")  # never killed
    expected = rows(straight)
    delete_namespace(stack.bootstrap, namespace)
    ensure_topics(stack.bootstrap, namespace, parts, 1)
    batches = Topics(namespace).internal("batches")
    log = tmp_path / "workers.log"
    a = _worker(cfg, namespace, tmp_path / "a", log)
    try:
        produce_lines(stack.bootstrap, namespace, lines)
        deadline = time.monotonic() + 240
        while not all(first_offsets(stack.bootstrap, batches, parts)):
            assert a.poll() is None and time.monotonic() < deadline, "no batch was ever deleted"
            time.sleep(0.5)
        os.kill(a.pid, signal.SIGKILL)
        a.wait()
        b = _worker(cfg, namespace, tmp_path / "b", log)  # an empty disk: rebuild from Kafka
        try:
            request_flush(stack.bootstrap, namespace)
            got = collect_results(
                stack.bootstrap, namespace, timeout=300, alive=lambda: b.poll() is None
            )
        finally:
            _stop(b)
    finally:
        if a.poll() is None:
            _stop(a)
    text = log.read_text()
    assert "rebuilt from" in text and "no longer on" not in text
    assert_same_rows(got, expected)
