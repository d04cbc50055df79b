"""Helpers for source tests: run a source into the real broker, read topics back.

Imported by the test modules as ``ingest_helpers`` (pytest puts this directory on sys.path).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingest.cursors import CursorStore
from ingest.producer import EventProducer
from ingest.runner import RunStats, run_source
from ingest.sources.base import Source
from tests.kafka_records import Record, read_topic, topic_config  # noqa: F401 - re-exported

# The shared real-payload fixtures live beside the repository (../shared/fixtures).
FIXTURES = Path(
    os.environ.get("RIPPLE_FIXTURES", Path(__file__).resolve().parents[4] / "shared" / "fixtures")
)


async def run_until(
    source: Source,
    bootstrap: str,
    namespace: str,
    store: CursorStore,
    until: Callable[[RunStats], bool],
    timeout: float = 30.0,
) -> RunStats:
    """Run ``source`` through the real runner and producer until ``until(stats)``."""
    stats = RunStats()
    stop = asyncio.Event()
    async with EventProducer(bootstrap, namespace, source=source.name) as producer:
        task = asyncio.create_task(run_source(source, producer, store, stop=stop, stats=stats))
        deadline = time.monotonic() + timeout
        try:
            while not until(stats):
                if task.done():
                    task.result()
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"source did not get there in {timeout}s: {stats}")
                await asyncio.sleep(0.02)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
    return stats


def strip_ingested(event: dict[str, Any]) -> dict[str, Any]:
    """Canonical events minus ``ingested_at`` (processing time, differs per run)."""
    return {k: v for k, v in event.items() if k != "ingested_at"}


async def run_cli_until(
    source: str,
    url: str,
    config_path: Path,
    namespace: str,
    cursor_dir: Path,
    bootstrap: str,
    min_events: int,
    env: dict[str, str] | None = None,
    extra: list[str] | None = None,
) -> tuple[list[Record], str]:
    """``ripple ingest <source> --url ...`` as a real process until ``min_events`` are in
    ``<namespace>.events``; then SIGINT. Returns the records and the process output."""
    import signal
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "deploy.cli", "ingest", source, "--url", url,
           "--config", str(config_path), "--namespace", namespace,
           "--cursor-dir", str(cursor_dir), *(extra or [])]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        cwd=Path(__file__).resolve().parents[3], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        records = await read_topic(bootstrap, f"{namespace}.events", min_events, timeout=60)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.to_thread(proc.communicate, timeout=20)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}:\n{text[-3000:]}")
    return records, text
