"""The collector's spool under real failures (issue 9), with real collector processes:

- kill -9 right after a drain, during a new outage, loses no 202-acknowledged event;
- 100,000 events with Kafka up (and one broker stall in the middle, so the spool is
  written and drained under traffic): the spool file stays bounded; its peak size is printed;
- a full disk (a 256 KiB tmpfs under the spool) answers 503 ``unavailable``, never 500, and
  ``/healthz`` says ``disk_full``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.web.wire import event_id

from .helpers import BROWSER, ORIGIN, SITE, read_topic, run_collector

pytestmark = pytest.mark.integration

FAST: dict[str, Any] = {"rate_per_second": 1_000_000.0, "rate_burst": 1_000_000}


def item(i: int) -> dict[str, Any]:
    return {"kind": "pageview", "site": SITE, "url": f"https://acme.com/p/{i}",
            "session": f"s{i % 97}", "nonce": f"n{i}"}  # fmt: skip


def ids(numbers: range | list[int]) -> set[str]:
    return {event_id(SITE, f"s{i % 97}", f"n{i}") for i in numbers}


async def post_all(
    client: httpx.AsyncClient, numbers: range, statuses: Counter[int], *, batch: int = 1,
    workers: int = 8,
) -> list[int]:  # fmt: skip
    """Posts ``numbers`` in batches; returns the numbers whose request was accepted."""
    chunks = iter(range(numbers.start, numbers.stop, batch))
    accepted: list[int] = []

    async def worker() -> None:
        for start in chunks:
            nums = range(start, min(start + batch, numbers.stop))
            content = json.dumps([item(i) for i in nums] if batch > 1 else item(start))
            r = await client.post("/e", content=content, headers={"origin": ORIGIN})
            statuses[r.status_code] += 1
            assert r.status_code in (200, 202, 503), r.text
            if r.status_code in (200, 202):
                accepted.extend(nums)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return accepted


async def wait_status(client: httpx.AsyncClient, want: str, timeout: float = 120) -> None:
    health: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            health = (await client.get("/healthz")).json()
        except httpx.HTTPError:
            health = {}
        if health.get("status") == want:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"collector not {want} after {timeout}s: {health}")


async def test_kill_9_after_a_drain_during_a_new_outage_loses_nothing(
    tmp_path: Path, stack: Any, namespace: str
) -> None:
    stack.create_topics(f"{namespace}.events", f"{namespace}.dlq", partitions=3)
    statuses: Counter[int] = Counter()
    acked: list[int] = []
    try:
        with run_collector(tmp_path, stack.bootstrap, namespace, **FAST) as collector:
            async with httpx.AsyncClient(base_url=collector.url, timeout=60, headers=BROWSER) as c:
                stack.stop_kafka()
                acked += await post_all(c, range(0, 300), statuses)  # spooled
                stack.start_kafka()
                await wait_status(c, "ok")  # drained: the file was emptied
                stack.stop_kafka()  # a new outage
                acked += await post_all(c, range(300, 600), statuses)
                assert (await c.get("/healthz")).json()["spooled_records"] >= 300
            collector.proc.send_signal(signal.SIGKILL)
            collector.proc.wait()
        assert statuses[202] >= 600 and len(acked) == 600, statuses
        stack.start_kafka()
        with run_collector(tmp_path, stack.bootstrap, namespace, wait_healthy=True, **FAST):
            records = await read_topic(
                stack.bootstrap, f"{namespace}.events", min_count=600, timeout=120, settle=2
            )
    finally:
        if not stack.local.kafka.healthy():
            stack.start_kafka()
    got = {r.json()["id"] for r in records}
    assert ids(acked) <= got, f"{len(ids(acked) - got)} acknowledged events lost"


async def test_spool_stays_bounded_over_100k_events_with_kafka_up(
    tmp_path: Path, stack: Any, namespace: str
) -> None:
    total, compact = 100_000, 1 << 20
    stack.create_topics(f"{namespace}.events", f"{namespace}.dlq", partitions=3)
    statuses: Counter[int] = Counter()
    spool_file = tmp_path / "spool" / "web.spool"
    sizes: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            with contextlib.suppress(FileNotFoundError):
                sizes.append(spool_file.stat().st_size)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    kafka = stack.local.kafka.pid()
    assert kafka is not None
    try:
        with run_collector(
            tmp_path, stack.bootstrap, namespace, spool_compact_bytes=compact, **FAST
        ) as collector:
            sampler.start()
            async with httpx.AsyncClient(base_url=collector.url, timeout=60, headers=BROWSER) as c:
                await post_all(c, range(0, 30_000), statuses, batch=10)
                # The broker stalls for 3 s under traffic: the collector spools, then drains
                # while requests keep coming (the file is never empty meanwhile).
                os.kill(kafka.pid, signal.SIGSTOP)
                try:
                    await post_all(c, range(30_000, 40_000), statuses, batch=10)
                    await asyncio.sleep(3.0)
                finally:
                    os.kill(kafka.pid, signal.SIGCONT)
                await post_all(c, range(40_000, total), statuses, batch=10)
                await wait_status(c, "ok")
                health = (await c.get("/healthz")).json()
    finally:
        stop.set()
        os.kill(kafka.pid, signal.SIGCONT)
    records = await read_topic(
        stack.bootstrap, f"{namespace}.events", min_count=total, timeout=180, settle=2
    )
    assert {r.json()["id"] for r in records} == ids(range(total))
    peak = max(sizes, default=0)
    print(f"\nspool file over {total} events: peak {peak} bytes, {statuses}, final {health}")
    assert statuses[202] > 0, "the stall never made the collector spool"
    assert peak <= 3 * compact + 1024 * 1024, peak  # threshold + tail (+ a drain batch)
    assert health["spool_file_bytes"] == 0


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
    )
    return done.returncode == 0


async def test_full_disk_is_503_and_healthz_says_so(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    if os.geteuid() != 0 or not _mount_tmpfs(spool_dir, "256k"):
        pytest.skip("mounting a tmpfs needs root (CI and the dev machines run as root)")
    statuses: Counter[int] = Counter()
    try:
        # Kafka unreachable: every accepted request goes to the spool, on a tiny disk.
        with run_collector(
            tmp_path, "127.0.0.1:9", "ripple", wait_healthy=False, **FAST
        ) as collector:
            async with httpx.AsyncClient(base_url=collector.url, timeout=30, headers=BROWSER) as c:
                accepted = await post_all(c, range(0, 3000), statuses, workers=4)
                assert statuses[503] > 0 and statuses[500] == 0, statuses
                assert 100 < len(accepted) < 3000
                r = await c.post("/e", content=json.dumps(item(9999)), headers={"origin": ORIGIN})
                assert r.status_code == 503 and r.json()["error"] == "unavailable", r.text
                assert "disk full" in r.json()["detail"]
                health = await c.get("/healthz")
                assert health.status_code == 503, health.text
                assert health.json()["status"] == "unavailable"
                assert health.json()["reason"] == "disk_full"
            assert "Traceback" not in collector.log()
    finally:
        subprocess.run(["umount", "-l", str(spool_dir)], check=False)
