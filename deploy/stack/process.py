"""Detached background processes with pid files: start, check, stop.

A pid file holds the pid and the kernel's start time of that process, so a recycled pid
is never mistaken for our service (and never signalled).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.stack.paths import StatePaths


@dataclass(frozen=True)
class PidRecord:
    pid: int
    start_ticks: int
    argv: list[str]


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) from /proc/<pid>/stat, or None when gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def pid_alive(pid: int, start_ticks: int | None = None) -> bool:
    stat = _proc_stat(pid)
    if stat is None or stat[0] in ("Z", "X"):
        return False
    return start_ticks is None or stat[1] == start_ticks


def read_pid(paths: StatePaths, name: str) -> PidRecord | None:
    """The service's live process, or None (a stale pid file is removed)."""
    file = paths.pid(name)
    try:
        data = json.loads(file.read_text())
        rec = PidRecord(int(data["pid"]), int(data["start_ticks"]), list(data.get("argv", [])))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    if pid_alive(rec.pid, rec.start_ticks):
        return rec
    file.unlink(missing_ok=True)
    return None


def start_detached(
    paths: StatePaths,
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> PidRecord:
    """Start ``argv`` in its own session (it outlives ``ripple up``), output to its log file."""
    paths.ensure()
    log = paths.log(name)
    with log.open("ab") as out:
        out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    stat = _proc_stat(proc.pid)
    rec = PidRecord(proc.pid, stat[1] if stat else 0, list(argv))
    tmp = paths.pid(name).with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": rec.pid, "start_ticks": rec.start_ticks, "argv": rec.argv}))
    tmp.replace(paths.pid(name))
    return rec


def _reap(pid: int) -> None:
    # When the caller is the parent (tests), collect the exit status so no zombie stays.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _signal(rec: PidRecord, sig: signal.Signals) -> None:
    if not pid_alive(rec.pid, rec.start_ticks):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        # Our services lead their own session: signal the group so helpers die with them.
        if os.getpgid(rec.pid) == rec.pid:
            os.killpg(rec.pid, sig)
        else:
            os.kill(rec.pid, sig)


def wait_gone(rec: PidRecord, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        gone = not pid_alive(rec.pid, rec.start_ticks)  # a zombie counts as gone...
        _reap(rec.pid)  # ...and is collected here when we are its parent
        if gone or time.monotonic() > deadline:
            return gone
        time.sleep(0.1)


def stop(paths: StatePaths, name: str, timeout: float = 30.0) -> bool:
    """SIGTERM (a clean shutdown), then SIGKILL after ``timeout``. True if it was running."""
    return bool(stop_many(paths, [name], timeout))


def stop_many(paths: StatePaths, names: Sequence[str], timeout: float = 30.0) -> list[str]:
    """Stop several services side by side (SIGTERM all, then wait); the names that ran."""
    recs = {n: r for n in names if (r := read_pid(paths, n)) is not None}
    for rec in recs.values():
        _signal(rec, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for rec in recs.values():
        if not wait_gone(rec, max(0.0, deadline - time.monotonic())):
            _signal(rec, signal.SIGKILL)
            wait_gone(rec, 10.0)
    for name in recs:
        paths.pid(name).unlink(missing_ok=True)
    return list(recs)


def tail(path: Path, lines: int = 20) -> str:
    """The end of a log file, for error messages."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
