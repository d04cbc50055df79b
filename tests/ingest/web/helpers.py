"""Shared helpers for the collector tests: configs, an in-memory sink, a real collector process,
and reading topics back from the real broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ingest.config import Config, load_config
from ingest.web.sink import DeadLetter, Delivery, Item
from ingest.web.spool import SpoolFull
from tests.kafka_records import Record, read_topic  # noqa: F401 - re-exported for the tests

REPO = Path(__file__).resolve().parents[3]

SITE = "acme.com"
ORIGIN = "https://www.acme.com"
# Real browsers' User-Agent strings (httpx's own, python-httpx/x, is a crawler's to the
# collector, which answers it 204 and keeps nothing).
FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15"
)
BROWSER = {"user-agent": FIREFOX_UA}


def config_text(
    bootstrap: str = "127.0.0.1:9",
    namespace: str = "ripple",
    *,
    domains: Sequence[str] = ("acme.com", "www.acme.com", "localhost", "127.0.0.1"),
    port: int = 0,
    **collector: Any,
) -> str:
    lines = [
        "[kafka]",
        f'bootstrap = "{bootstrap}"',
        f'namespace = "{namespace}"',
        "[[sites]]",
        f'name = "{SITE}"',
        "domains = [" + ", ".join(f'"{d}"' for d in domains) + "]",
        "[[sites]]",
        'name = "other.org"',
        'domains = ["other.org"]',
        "[collector]",
        f"port = {port}",
    ]
    for key, value in collector.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def make_config(tmp: Path, **kwargs: Any) -> Config:
    path = tmp / "ripple.toml"
    path.write_text(config_text(**kwargs))
    return load_config(path, env={})


@dataclass
class MemorySink:
    """Stands in for the Kafka sink in HTTP-only unit tests (the integration tests use Kafka)."""

    delivery: Delivery = Delivery.ACKED
    full: bool = False
    items: list[Item] = field(default_factory=list)
    started: bool = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def submit(self, items: Sequence[Item]) -> Delivery:
        if self.full:
            raise SpoolFull("spool holds too much")
        self.items.extend(items)
        return self.delivery

    def status(self) -> dict[str, object]:
        return {"status": "ok", "spooling": False}

    @property
    def events(self) -> list[Any]:
        return [i for i in self.items if not isinstance(i, DeadLetter)]

    @property
    def dead(self) -> list[DeadLetter]:
        return [i for i in self.items if isinstance(i, DeadLetter)]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class CollectorProcess:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def run_collector(
    tmp: Path, bootstrap: str, namespace: str, *, wait_healthy: bool = True, **collector: Any
) -> Iterator[CollectorProcess]:
    """``ripple ingest web`` as its own process on a free port, stopped with SIGTERM after."""
    port = free_port()
    cfg = tmp / "collector.toml"
    cfg.write_text(config_text(bootstrap, namespace, port=port, **collector))
    log_path = tmp / "collector.log"
    spool = tmp / "spool" / "web.spool"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deploy.cli",
                "ingest",
                "web",
                "--config",
                str(cfg),
                "--spool",
                str(spool),
            ],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    handle = CollectorProcess(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"collector exited with {proc.returncode}:\n{handle.log()}")
            try:
                r = httpx.get(handle.url + "/healthz", timeout=1)
                if not wait_healthy or r.json().get("status") == "ok":
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"collector not healthy after 30s:\n{handle.log()}")
            time.sleep(0.1)
        yield handle
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
