"""Helpers for tests that run ``ripple replay`` / ``ripple archive`` as commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

ROOT = Path(__file__).resolve().parents[2]


def ripple(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "deploy.cli", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def run_replay(cfg: Path, namespace: str, out: Path, *source: str) -> str:
    """Run a replay to completion; its stdout."""
    proc = ripple("replay", "--config", str(cfg), "--namespace", namespace, "--out", str(out),
                  "--timeout", "300", *source)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def replay_config(stack_config: Path, tracking: str, where: Path) -> Path:
    """The stack's config plus tracking rules, written to ``where``."""
    where.write_text(stack_config.read_text() + "\n" + tracking + "\n")
    return where


def produce_raw(bootstrap: str, topic: str, records: list[tuple[int, int, bytes]]) -> None:
    """(partition, timestamp ms, value) records, in order, acknowledged by all replicas."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for partition, ts, value in records:
            producer.send(topic, value=value, partition=partition, timestamp_ms=ts)
        producer.flush()
    finally:
        producer.close()


def write_dataset(
    stack_config: Path, config_toml: str, lines: list[bytes], d: Path
) -> tuple[Path, Path]:
    """A reference dataset on the test stack: its config (the stack's + the dataset's, small
    gate batches so windows close mid-batch) and its events file."""
    cfg = d / "ripple.toml"
    cfg.write_text(
        stack_config.read_text() + "\n" + config_toml + "\n[processing]\ngate_batch_records = 250\n"
    )
    events = d / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    return cfg, events
