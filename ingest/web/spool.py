"""A local append-only spool that holds accepted records while Kafka is unavailable.

Layout: one file of frames ``<length u32><crc32 u32><append time f64><payload>``, and a
sidecar ``<file>.offset`` with the offset up to which frames were delivered. Frames are read
back in append order; when everything is delivered the file is truncated to empty.

Durability: ``append`` hands the frame to the OS at once (survives a crash of the
process); ``sync`` fsyncs, grouping concurrent callers into one fsync (survives a crash of
the machine). After a crash the frames past the last recorded offset are sent again, with
their original ids, so downstream deduplication by id absorbs the repeat. A torn frame at the
end (a crash in the middle of a write) is cut off on open.

Bounds: ``max_bytes`` of undelivered frames and ``max_age_seconds`` for the oldest of them;
past either, ``append`` raises ``SpoolFull`` and the caller refuses the request (nothing is
accepted that cannot be kept).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<IId")
_OFFSET = struct.Struct("<Q")
MAX_FRAME = 64 * 1024 * 1024


class SpoolFull(Exception):
    """The spool reached its size or age bound; the record was not accepted."""


class SpoolLocked(RuntimeError):
    """Another process holds the spool file."""


class Spool:
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int,
        max_age_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._fd = -1
        self._offset_fd = -1
        self._end = 0  # end of the last complete frame
        self._committed = 0  # frames before this offset are delivered
        self._read_pos = 0  # frames before this offset were handed to a reader
        self._pending = 0  # frames in [committed, end)
        self._oldest: float | None = None  # append time of the frame at ``committed``
        self._appended = 0
        self._synced = 0
        self._sync_task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpoolLocked(f"spool {self.path} is in use by another process") from None
        self._fd = fd
        self._offset_fd = os.open(f"{self.path}.offset", os.O_RDWR | os.O_CREAT, 0o600)
        self._recover()

    def close(self) -> None:
        for fd in (self._offset_fd, self._fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._offset_fd = -1

    def __enter__(self) -> Spool:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _recover(self) -> None:
        size = os.fstat(self._fd).st_size
        raw = os.pread(self._offset_fd, _OFFSET.size, 0)
        committed = _OFFSET.unpack(raw)[0] if len(raw) == _OFFSET.size else 0
        if committed > size:  # the file was emptied after the offset was written
            committed = 0
        pos, count = committed, 0
        while pos + _HEADER.size <= size:
            length, crc, _ = _HEADER.unpack(os.pread(self._fd, _HEADER.size, pos))
            if length > MAX_FRAME or pos + _HEADER.size + length > size:
                break
            payload = os.pread(self._fd, length, pos + _HEADER.size)
            if zlib.crc32(payload) != crc:
                break
            pos += _HEADER.size + length
            count += 1
        if pos < size:
            log.warning(
                "spool %s: cutting %d bytes of a torn frame at its end", self.path, size - pos
            )
            os.ftruncate(self._fd, pos)
        self._end = pos
        self._committed = self._read_pos = committed
        self._pending = count
        self._oldest = self._frame_time(committed) if count else None
        if count:
            log.info("spool %s: %d undelivered frames from an earlier run", self.path, count)

    def _frame_time(self, offset: int) -> float:
        return float(_HEADER.unpack(os.pread(self._fd, _HEADER.size, offset))[2])

    # -- state -----------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Frames accepted and not yet delivered."""
        return self._pending

    @property
    def pending_bytes(self) -> int:
        return self._end - self._committed

    def oldest_age(self) -> float:
        """Seconds since the oldest undelivered frame was appended (0 when empty)."""
        return 0.0 if self._oldest is None else max(0.0, self._clock() - self._oldest)

    def full_reason(self) -> str | None:
        if self.pending_bytes >= self.max_bytes:
            return f"spool holds {self.pending_bytes} bytes, limit {self.max_bytes}"
        if self._oldest is not None and self.oldest_age() >= self.max_age_seconds:
            return f"oldest spooled record is {self.oldest_age():.0f}s old, limit {self.max_age_seconds:.0f}s"
        return None

    # -- writing ---------------------------------------------------------------------------

    def append(self, payload: bytes) -> int:
        """Append one frame; returns its offset. Raises SpoolFull past the bounds."""
        reason = self.full_reason()
        if reason is not None:
            raise SpoolFull(reason)
        now = self._clock()
        frame = _HEADER.pack(len(payload), zlib.crc32(payload), now) + payload
        offset = self._end
        written = os.write(self._fd, frame)
        if written != len(frame):  # disk full: undo the partial frame, refuse
            os.ftruncate(self._fd, offset)
            raise SpoolFull(f"short write to {self.path} ({written} of {len(frame)} bytes)")
        self._end += len(frame)
        if self._pending == 0:
            self._oldest = now
        self._pending += 1
        self._appended += 1
        return offset

    async def sync(self) -> None:
        """Return once every frame appended before the call is on disk (group fsync)."""
        target = self._appended
        while self._synced < target:
            if self._sync_task is None or self._sync_task.done():
                self._sync_task = asyncio.create_task(self._fsync())
            await asyncio.shield(self._sync_task)

    async def _fsync(self) -> None:
        upto = self._appended
        await asyncio.to_thread(os.fsync, self._fd)
        self._synced = max(self._synced, upto)

    # -- reading ---------------------------------------------------------------------------

    def read(
        self, max_frames: int = 256, max_bytes: int = 4 * 1024 * 1024
    ) -> list[tuple[int, bytes]]:
        """The next frames after those already read (offset, payload), in append order."""
        out: list[tuple[int, bytes]] = []
        size = 0
        pos = self._read_pos
        while pos < self._end and len(out) < max_frames and size < max_bytes:
            length = _HEADER.unpack(os.pread(self._fd, _HEADER.size, pos))[0]
            out.append((pos, os.pread(self._fd, length, pos + _HEADER.size)))
            pos += _HEADER.size + length
            size += length
        self._read_pos = pos
        return out

    def rewind(self) -> None:
        """Read again from the first undelivered frame (after a failed delivery)."""
        self._read_pos = self._committed

    def commit(self, frames: int) -> None:
        """The next ``frames`` undelivered frames were delivered: forget them."""
        pos = self._committed
        for _ in range(frames):
            pos += _HEADER.size + _HEADER.unpack(os.pread(self._fd, _HEADER.size, pos))[0]
        self._pending -= frames
        if pos >= self._end:
            # Empty: truncate first, so a crash in between never replays delivered frames.
            os.ftruncate(self._fd, 0)
            self._end = self._committed = 0
            self._read_pos = 0
            self._pending = 0
            self._oldest = None
            os.pwrite(self._offset_fd, _OFFSET.pack(0), 0)
            return
        self._committed = pos
        self._read_pos = max(self._read_pos, pos)
        self._oldest = self._frame_time(pos)
        os.pwrite(self._offset_fd, _OFFSET.pack(pos), 0)
