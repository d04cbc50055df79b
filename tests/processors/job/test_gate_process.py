"""The gate in its own process (processors/job/gate_process.py) on the real broker: killed
with SIGKILL it is restarted and the results stay exact; a worker killed with SIGKILL
leaves no gate process behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from deploy.stack.proctree import children
from ingest.config import load_config
from processors.history.replay import collect_results, produce_lines, request_flush
from processors.job.topology import delete_namespace, ensure_topics
from tests.processors.job.test_replay import (  # noqa: F401 - dataset is a fixture
    _result_count,
    _stop,
    _worker,
    assert_same_rows,
    dataset,
)

pytestmark = pytest.mark.integration


def gate_child(pid: int, timeout: float = 60.0, other_than: int | None = None) -> int:
    """The worker's gate process (its one spawned Python child)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in children(pid):
            try:
                cmdline = Path(f"/proc/{c}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"multiprocessing.spawn" in cmdline and c != other_than:
                return c
        time.sleep(0.1)
    raise AssertionError(f"worker {pid} has no gate process within {timeout}s")


def gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":  # exited, not yet reaped
            return True
        time.sleep(0.1)
    return False


def test_gate_process_killed_is_restarted_and_results_stay_exact(
    dataset,  # noqa: F811
    stack,
    namespace: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    cfg, _, lines, expected = dataset
    config = load_config(cfg)
    delete_namespace(stack.bootstrap, namespace)
    ensure_topics(stack.bootstrap, namespace, config.kafka.partitions, 1)
    half = len(lines) // 2
    log = tmp_path / "worker.log"
    worker = _worker(cfg, namespace, tmp_path / "w", log)
    try:
        first = gate_child(worker.pid)
        produce_lines(stack.bootstrap, namespace, lines[:half])
        deadline = time.monotonic() + 120
        while _result_count(stack.bootstrap, namespace) == 0:
            assert time.monotonic() < deadline, "no results before the kill"
            time.sleep(0.05)
        os.kill(first, signal.SIGKILL)  # mid-stream: a batch may be half written
        second = gate_child(worker.pid, other_than=first)
        produce_lines(stack.bootstrap, namespace, lines[half:])
        request_flush(stack.bootstrap, namespace)
        got = collect_results(
            stack.bootstrap, namespace, timeout=300, alive=lambda: worker.poll() is None
        )
        assert worker.poll() is None, "the worker itself went down with its gate"
    finally:
        _stop(worker)
    assert_same_rows(got, expected)
    assert second != first and "restarting" in log.read_text()


def test_worker_killed_leaves_no_gate_process_behind(
    dataset,  # noqa: F811
    stack,
    namespace: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    cfg, _, _, _ = dataset
    ensure_topics(stack.bootstrap, namespace, load_config(cfg).kafka.partitions, 1)
    worker = _worker(cfg, namespace, tmp_path / "w", tmp_path / "worker.log")
    try:
        gate = gate_child(worker.pid)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        assert gone(gate), f"gate process {gate} outlived its worker"
    finally:
        if worker.poll() is None:
            _stop(worker)
