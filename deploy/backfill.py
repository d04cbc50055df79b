"""Backfill a replay's window results into the local Prometheus.

``processors.history.backfill`` writes the OpenMetrics file; here ``promtool tsdb
create-blocks-from openmetrics`` turns it into TSDB blocks, built in a directory beside the
data dir (same file system) and then renamed into it, so Prometheus never sees a half-made
block. How Prometheus 2.42 picks them up: its TSDB re-reads the data dir for new blocks once
a minute (``DB.run`` calls ``reloadBlocks`` every minute; the admin API has no "load blocks"
call), so by default we wait for the next reload, seen as ``prometheus_tsdb_reloads_total``
going up on its /metrics, which costs at most a minute and leaves the live stack alone.
``reload="restart"`` restarts the stack's Prometheus instead (a few seconds, a gap in
scrapes). Overlapping blocks are merged at query time (always on since 2.39).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from deploy.stack import prometheus, supervisor
from deploy.stack.paths import StatePaths
from ingest.config import Config
from processors.history.backfill import HEAD_BLOCK_SECONDS, BackfillStats, write_openmetrics
from processors.wire import WindowCounts

ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


class BackfillError(RuntimeError):
    """The backfill could not be made or loaded."""


@dataclass
class BackfillReport:
    file: Path
    stats: BackfillStats
    blocks: list[str] = field(default_factory=list)
    loaded: str = ""  # how Prometheus got the blocks
    warnings: list[str] = field(default_factory=list)


def prometheus_url(cfg: Config) -> str:
    return f"http://127.0.0.1:{cfg.stack.prometheus_port}"


def data_dir(cfg: Config) -> Path:
    return StatePaths.at(cfg.stack.state_dir).home(prometheus.NAME) / "data"


def retention_seconds(argv: Iterable[str]) -> float | None:
    """The ``--storage.tsdb.retention.time`` of a Prometheus command line (``15d``, ``1w2d``)."""
    for arg in argv:
        if arg.startswith("--storage.tsdb.retention.time="):
            parts = re.findall(r"(\d+)([ywdhms])", arg.split("=", 1)[1])
            return float(sum(int(n) * UNITS[u] for n, u in parts)) or None
    return None


def create_blocks(openmetrics: Path, data: Path) -> list[str]:
    """Run promtool into a directory beside ``data``, then move the blocks in; their ids."""
    promtool = shutil.which("promtool")
    if promtool is None:
        raise BackfillError("promtool not found (Debian package prometheus; run `make install`)")
    data.mkdir(parents=True, exist_ok=True)
    work = data.parent / f"backfill-{time.time_ns()}"
    work.mkdir()
    try:
        proc = subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(openmetrics), str(work)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise BackfillError(f"promtool failed: {(proc.stderr or proc.stdout)[-2000:]}")
        blocks = sorted(d.name for d in work.iterdir() if d.is_dir() and ULID.match(d.name))
        for name in blocks:
            (work / name).rename(data / name)
        return blocks
    finally:
        shutil.rmtree(work, ignore_errors=True)


def tsdb_counter(url: str, name: str) -> float | None:
    """A counter from Prometheus's own /metrics; None when it does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def wait_reload(url: str, reloads_before: float, failures_before: float, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        now = tsdb_counter(url, "prometheus_tsdb_reloads_total")
        if now is not None and now > reloads_before:
            failed = tsdb_counter(url, "prometheus_tsdb_reloads_failures_total") or 0
            if failed > failures_before:
                raise BackfillError("Prometheus failed to reload its blocks; see its log")
            return
        if time.monotonic() > deadline:
            raise BackfillError(f"Prometheus did not reload its blocks within {timeout:.0f}s")
        time.sleep(1)


def restart_prometheus(cfg: Config, timeout: float = 60) -> None:
    paths = StatePaths.at(cfg.stack.state_dir)
    st = cfg.stack
    supervisor.stop(paths, prometheus.NAME)
    prometheus.prepare(paths, st.prometheus_port, st.alertmanager_port)
    spec = prometheus.spec(paths, st.prometheus_port, st.alertmanager_port)
    supervisor.start(paths, spec)
    supervisor.wait_healthy(paths, spec, timeout)


def backfill(
    windows: list[WindowCounts],
    namespace: str,
    cfg: Config,
    file: Path,
    *,
    reload: str = "wait",
    now: float | None = None,
    timeout: float = 150,
) -> BackfillReport:
    """Write ``file`` (OpenMetrics), make blocks of it in the stack's Prometheus and load them."""
    now = time.time() if now is None else now
    with file.open("w") as fh:
        stats = write_openmetrics(windows, namespace, fh, not_after=now - HEAD_BLOCK_SECONDS)
    report = BackfillReport(file, stats)
    if stats.skipped_recent:
        report.warnings.append(
            f"{stats.skipped_recent} samples within the last {HEAD_BLOCK_SECONDS // 3600} hours "
            "left out: Prometheus's head block covers them (only older history is backfilled)"
        )
    if stats.samples == 0:
        raise BackfillError(
            "nothing to backfill: no 1m counter results older than "
            f"{HEAD_BLOCK_SECONDS // 3600} hours"
            + (f" ({report.warnings[0]})" if stats.skipped_recent else "")
        )
    paths = StatePaths.at(cfg.stack.state_dir)
    keep = retention_seconds(prometheus.spec(paths, 0, 0).argv)
    if keep and stats.first is not None and stats.first < now - keep:
        report.warnings.append(
            f"samples older than the local Prometheus retention ({keep / 86400:.0f} days) "
            "will be deleted by it at its next reload"
        )
    url = prometheus_url(cfg)
    reloads = tsdb_counter(url, "prometheus_tsdb_reloads_total")
    failures = tsdb_counter(url, "prometheus_tsdb_reloads_failures_total") or 0
    report.blocks = create_blocks(file, data_dir(cfg))
    if reload == "restart":
        restart_prometheus(cfg)
        report.loaded = "Prometheus restarted"
    elif reloads is None:
        report.loaded = f"Prometheus is not running at {url}: it loads the blocks when it starts"
    else:
        started = time.monotonic()
        wait_reload(url, reloads, failures, timeout)
        report.loaded = f"Prometheus loaded them in {time.monotonic() - started:.0f}s"
    return report
