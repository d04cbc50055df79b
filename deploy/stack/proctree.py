"""A process and its children, read from /proc: who they are and the memory they hold.

A worker is two processes (the agents and the gate, ``processors.job.gate_process``): the
benchmarks report their memory together, and tests find the gate child to kill it.
"""

from __future__ import annotations

from pathlib import Path


def children(pid: int) -> set[int]:
    """The direct children of ``pid`` (of every thread of it); empty once it is gone."""
    out: set[int] = set()
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return out
    for task in tasks:
        try:
            out |= {int(c) for c in (task / "children").read_text().split()}
        except FileNotFoundError:
            continue
    return out


def memory_mib(pid: int, field: str = "VmRSS") -> float:
    """``field`` of /proc/<pid>/status (VmRSS: resident now; VmHWM: its peak), MiB."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def tree_memory_mib(pid: int, field: str = "VmRSS") -> float:
    """``field`` of ``pid`` plus its direct children, MiB."""
    return sum(memory_mib(p, field) for p in (pid, *children(pid)))
