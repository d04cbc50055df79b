"""The archive's checkpoint: what is durably in the files, and from which offsets to go on.

After each flush (data fsynced), the checkpoint records every partition's next offset and
every day file's size, written atomically (temp file, fsync, rename, fsync of the dir). On
start, files are cut back to their recorded sizes and files the checkpoint does not know are
removed: whatever a crash left after the last checkpoint is written again from Kafka, once.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO

import msgspec

log = logging.getLogger(__name__)
CHECKPOINT = ".checkpoint.json"
LOCK = ".lock"
SUFFIX = ".jsonl.zst"


class ArchiveError(RuntimeError):
    """The archive directory cannot be used as it is."""


class Checkpoint(msgspec.Struct):
    topic: str
    offsets: dict[int, int] = {}  # partition -> next offset to archive
    sizes: dict[str, int] = {}  # day file name -> bytes durably written


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def lock(directory: Path) -> IO[bytes]:
    """An exclusive lock on the directory for this process's lifetime (one archiver each)."""
    fh = (directory / LOCK).open("ab")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise ArchiveError(f"another `ripple archive` is writing {directory}") from None
    return fh


def load(directory: Path, topic: str) -> Checkpoint | None:
    try:
        raw = (directory / CHECKPOINT).read_bytes()
    except FileNotFoundError:
        return None
    cp = msgspec.json.decode(raw, type=Checkpoint)
    if cp.topic != topic:
        raise ArchiveError(f"{directory} archives {cp.topic}, not {topic}")
    return cp


def save(directory: Path, cp: Checkpoint) -> None:
    tmp = directory / (CHECKPOINT + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(msgspec.json.encode(cp))
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(directory / CHECKPOINT)
    fsync_dir(directory)


def day_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*" + SUFFIX))


def recover(directory: Path, topic: str) -> Checkpoint:
    """The checkpoint, with the files brought back to it (a fresh one for a new directory)."""
    cp = load(directory, topic)
    files = day_files(directory)
    if cp is None:
        if files:
            raise ArchiveError(
                f"{directory} holds archive files but no {CHECKPOINT}: cannot tell what is "
                "complete; move the files away (or restore the checkpoint) and start again"
            )
        return Checkpoint(topic)
    for f in files:
        size = f.stat().st_size
        want = cp.sizes.get(f.name)
        if want is None:
            log.warning("%s: written after the last checkpoint; removing it", f)
            f.unlink()
        elif size > want:
            log.warning("%s: cutting %d bytes written after the last checkpoint", f, size - want)
            with f.open("r+b") as fh:
                fh.truncate(want)
                os.fsync(fh.fileno())
        elif size < want:
            raise ArchiveError(f"{f} is shorter ({size} bytes) than its checkpoint ({want})")
    missing = [name for name in cp.sizes if not (directory / name).exists()]
    if missing:
        raise ArchiveError(f"{directory}: files of the checkpoint are missing: {missing}")
    fsync_dir(directory)
    return cp
