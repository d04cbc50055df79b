"""The collector's local spool (ingest/web/spool.py): order, bounds, crash recovery."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest.web.spool import Spool, SpoolFull, SpoolLocked


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spool(
    path: Path, clock: Clock | None = None, max_bytes: int = 1 << 20, max_age: float = 60
) -> Spool:
    return Spool(path, max_bytes=max_bytes, max_age_seconds=max_age, clock=clock or Clock())


def test_frames_come_back_in_order_and_commit_empties_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s" / "web.spool"
    with spool(path) as sp:
        offsets = [sp.append(f"frame {i}".encode()) for i in range(10)]
        assert offsets == sorted(offsets) and sp.pending == 10
        first = sp.read(max_frames=4)
        assert [p for _, p in first] == [f"frame {i}".encode() for i in range(4)]
        assert [o for o, _ in first] == offsets[:4]
        sp.commit(4)
        assert sp.pending == 6
        rest = sp.read()
        assert [p for _, p in rest] == [f"frame {i}".encode() for i in range(4, 10)]
        assert sp.read() == []
        sp.commit(6)
        assert sp.pending == 0 and sp.pending_bytes == 0
        assert path.stat().st_size == 0  # truncated once everything is delivered
        assert sp.file_bytes == 0
        sp.append(b"again")
        assert [p for _, p in sp.read()] == [b"again"]


def test_rewind_reads_undelivered_frames_again(tmp_path: Path) -> None:
    with spool(tmp_path / "web.spool") as sp:
        for i in range(3):
            sp.append(bytes([i]))
        sp.read()
        sp.rewind()
        assert [p for _, p in sp.read()] == [b"\x00", b"\x01", b"\x02"]


def test_undelivered_frames_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "web.spool"
    with spool(path) as sp:
        for i in range(5):
            sp.append(f"f{i}".encode())
        sp.read(max_frames=2)
        sp.commit(2)
    with spool(path) as sp:
        assert sp.pending == 3
        assert [p for _, p in sp.read()] == [b"f2", b"f3", b"f4"]


def test_a_torn_frame_at_the_end_is_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "web.spool"
    with spool(path) as sp:
        sp.append(b"complete")
        sp.append(b"also complete")
    with open(path, "ab") as f:
        f.write(b"\x40\x00\x00\x00garbage")  # a header promising 64 bytes, then a crash
    with spool(path) as sp:
        assert sp.pending == 2
        assert [p for _, p in sp.read()] == [b"complete", b"also complete"]
        sp.append(b"next")
        assert [p for _, p in sp.read()] == [b"next"]


def test_a_corrupt_frame_is_not_delivered(tmp_path: Path) -> None:
    path = tmp_path / "web.spool"
    with spool(path) as sp:
        sp.append(b"good")
        sp.append(b"flipped")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with spool(path) as sp:
        assert [p for _, p in sp.read()] == [b"good"]


def test_size_bound(tmp_path: Path) -> None:
    with spool(tmp_path / "web.spool", max_bytes=100) as sp:
        sp.append(b"x" * 90)
        with pytest.raises(SpoolFull, match="limit 100"):
            sp.append(b"y" * 10)
        sp.read()
        sp.commit(1)
        sp.append(b"y" * 10)  # room again once delivered


def test_age_bound(tmp_path: Path) -> None:
    clock = Clock()
    with spool(tmp_path / "web.spool", clock=clock, max_age=60) as sp:
        sp.append(b"old")
        clock.now += 30
        sp.append(b"newer")
        assert sp.oldest_age() == 30
        clock.now += 31
        assert sp.full_reason() is not None
        with pytest.raises(SpoolFull, match="old"):
            sp.append(b"refused")
        sp.read(max_frames=1)
        sp.commit(1)  # the oldest is now 31s old
        assert sp.oldest_age() == 31
        sp.append(b"accepted")


def test_one_process_per_spool(tmp_path: Path) -> None:
    path = tmp_path / "web.spool"
    with spool(path), pytest.raises(SpoolLocked):
        spool(path).open()


async def test_sync_groups_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    calls: list[int] = []
    real = os.fsync

    def counting_fsync(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    with spool(tmp_path / "web.spool") as sp:

        async def one(i: int) -> None:
            sp.append(bytes([i]))
            await sp.sync()

        await asyncio.gather(*(one(i) for i in range(20)))
        assert 1 <= len(calls) < 20
        await sp.sync()  # nothing new: no fsync
        n = len(calls)
        await sp.sync()
        assert len(calls) == n
