"""`ripple up` / `status` / `down` as a user runs them: its own stack on free ports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from deploy.stack.process import pid_alive


def ripple(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _processes_under(state_dir: Path) -> list[int]:
    """Live processes whose command line or working directory is in the state dir."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, PermissionError, ProcessLookupError, IndexError):
            continue
        if state != "Z" and (str(state_dir) in cmdline or cwd.startswith(str(state_dir))):
            found.append(int(entry.name))
    return found


def test_help_explains_the_stack_commands() -> None:
    top = ripple("--help")
    assert top.returncode == 0
    for command in ("up", "status", "down"):
        assert command in top.stdout
    up = ripple("up", "--help")
    assert (
        "idempotent" in up.stdout.lower()
        and "--state-dir" in up.stdout
        and "--workers" in up.stdout
    )
    down = ripple("down", "--help")
    assert "--purge" in down.stdout


def test_status_of_a_stack_never_started(tmp_path: Path) -> None:
    state = tmp_path / "never"
    res = ripple("status", "--state-dir", str(state))
    assert res.returncode == 1
    assert "down" in res.stdout and " up " not in res.stdout
    assert not state.exists()  # asking does not create state


def test_down_purge_refuses_a_directory_that_is_not_a_state_dir(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    res = ripple("down", "--purge", "--state-dir", str(tmp_path))
    assert res.returncode == 1 and "not deleting" in res.stderr
    assert (tmp_path / "precious.txt").exists()


@pytest.mark.integration
def test_up_status_down_keeps_data_then_purge(tmp_path: Path, make_stack_config) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    state = tmp_path / "state"
    # Workers are the processors' own tests' business; this checks the stack itself.
    config = make_stack_config(state, workers=0)
    conf = ["--config", str(config)]
    try:
        up = ripple("up", *conf)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "started: kafka, alertmanager, prometheus, webhook" in up.stdout
        manifest = json.loads((state / "stack.json").read_text())
        bootstrap = manifest["bootstrap"]
        assert bootstrap in up.stdout and manifest["prometheus_url"] in up.stdout
        assert f"{manifest['webhook_url']}/" in up.stdout  # where the notifications are

        status = ripple("status", *conf)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count(" up ") == 4  # kafka, alertmanager, prometheus, webhook

        again = ripple("up", *conf)
        assert again.returncode == 0 and "already up" in again.stdout, again.stdout + again.stderr

        # Namespace topics exist with the configured partition count; write some data.
        consumer = KafkaConsumer(bootstrap_servers=bootstrap)
        assert consumer.partitions_for_topic("ripple.events") == {0, 1, 2}
        consumer.close()
        topic = f"keep.{uuid.uuid4().hex[:8]}"
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        for i in range(50):
            producer.send(topic, f"d{i}".encode())
        producer.flush()
        producer.close()

        recs = [json.loads(p.read_text()) for p in (state / "pids").glob("*.pid")]
        assert len(recs) == 4
        down = ripple("down", *conf)
        assert down.returncode == 0, down.stdout + down.stderr
        assert _processes_under(state) == []
        assert not [r for r in recs if pid_alive(r["pid"], r["start_ticks"])]
        assert not list((state / "pids").glob("*.pid"))
        status = ripple("status", *conf)
        assert status.returncode == 1 and " up " not in status.stdout

        up = ripple("up", *conf)
        assert up.returncode == 0, up.stdout + up.stderr
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=30000,
        )
        values = []
        for record in consumer:
            values.append(record.value)
            if len(values) == 50:
                break
        consumer.close()
        values.sort()
        assert values == sorted(f"d{i}".encode() for i in range(50))
    finally:
        down = ripple("down", "--purge", *conf)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not state.exists()
    assert _processes_under(state) == []
