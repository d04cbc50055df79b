"""A local append-only spool that holds accepted records while Kafka is unavailable.

Layout: one file ``<magic 8><file id 8>`` then frames ``<length u32><crc32 u32><append time
f64><payload>``; a sidecar ``<file>.offset`` holds ``<file id 8><offset u64>``, the offset in
that file up to which frames were delivered; ``<file>.lock`` holds the process lock. Frames
are read back in append order.

Why a file id: the sidecar is written after the spool file changes (truncated when all was
delivered, compacted, re-grown), and a crash can come in between. An offset is only believed
for the file it was written for; a sidecar of another id (stale) means "nothing of this file
is known to be delivered", so its frames are sent again (they keep their ids; downstream
deduplication absorbs the repeat). A stale offset can therefore never skip a frame. Every
truncation or compaction gives the file a new id; the sidecar and the directory are fsynced.
A spool of the earlier format (no header) is upgraded on open, its undelivered frames kept.

Size: when everything is delivered the file is truncated; under steady traffic that never
lets it run empty, it is compacted (the undelivered tail copied to a new file, renamed over
the old) once ``compact_bytes`` of delivered frames precede the first undelivered one and the
tail is no larger than them (copying never costs more than it frees). Offsets handed out are
logical (they keep growing across compactions), so callers may keep them.

Durability: ``append`` hands the frame to the OS at once (survives a crash of the process);
``sync`` fsyncs, grouping concurrent callers into one fsync (survives a crash of the
machine). A torn frame at the end (a crash in the middle of a write) is cut off on open.

Bounds: ``max_bytes`` of undelivered frames and ``max_age_seconds`` for the oldest of them;
past either, ``append`` raises ``SpoolFull`` and the caller refuses the request (nothing is
accepted that cannot be kept). A full disk (ENOSPC, EDQUOT, EFBIG) is ``SpoolFull`` too,
with ``disk_full`` set, for ``DISK_RETRY_SECONDS`` before the next write is tried.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

_MAGIC = b"RPLSPL01"
_FILE_HEADER = struct.Struct("<8s8s")
HEADER_BYTES = _FILE_HEADER.size
_HEADER = struct.Struct("<IId")
_SIDECAR = struct.Struct("<8sQ")
MAX_FRAME = 64 * 1024 * 1024
DISK_RETRY_SECONDS = 5.0
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class SpoolFull(Exception):
    """The spool reached its size or age bound, or the disk is full; nothing was accepted."""

    def __init__(self, detail: str, *, disk_full: bool = False) -> None:
        super().__init__(detail)
        self.disk_full = disk_full


class SpoolLocked(RuntimeError):
    """Another process holds the spool file."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int,
        max_age_seconds: float,
        compact_bytes: int = 16 * 1024 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_age_seconds = max_age_seconds
        self.compact_bytes = compact_bytes
        self._clock = clock
        self._fd = -1
        self._offset_fd = -1
        self._lock_fd = -1
        self._id = b""  # id of the current file (its header is written with the first frame)
        self._base = 0  # logical offset of physical offset 0 (grows at each compaction)
        self._end = 0  # physical end of the last complete frame (0: no header yet)
        self._committed = 0  # physical: frames before this offset are delivered
        self._read_pos = 0  # physical: frames before this offset were handed to a reader
        self._pending = 0  # frames in [committed, end)
        self._oldest: float | None = None  # append time of the frame at ``committed``
        self._appended = 0
        self._synced = 0
        self._sync_task: asyncio.Task[None] | None = None
        self._disk_full_at: float | None = None
        self._disk_error = ""
        self.compactions = 0

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise SpoolLocked(f"spool {self.path} is in use by another process") from None
        self._lock_fd = lock
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self._offset_fd = os.open(f"{self.path}.offset", os.O_RDWR | os.O_CREAT, 0o600)
        _fsync_dir(self.path.parent)
        self._recover()

    def close(self) -> None:
        for fd in (self._offset_fd, self._fd, self._lock_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._offset_fd = self._lock_fd = -1

    def __enter__(self) -> Spool:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _recover(self) -> None:
        size = os.fstat(self._fd).st_size
        head = os.pread(self._fd, HEADER_BYTES, 0)
        magic, file_id = _FILE_HEADER.unpack(head) if len(head) == HEADER_BYTES else (b"", b"")
        if magic != _MAGIC:
            if size:  # a spool of the format before file ids
                self._upgrade_legacy(size)
                self._recover()
                return
            self._reset()
            return
        raw = os.pread(self._offset_fd, _SIDECAR.size, 0)
        side_id, committed = _SIDECAR.unpack(raw) if len(raw) == _SIDECAR.size else (b"", 0)
        if side_id != file_id:
            committed = HEADER_BYTES  # stale or missing sidecar: nothing is known delivered
        committed = min(max(committed, HEADER_BYTES), size)
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
        self._id = file_id
        self._end = pos
        self._committed = self._read_pos = committed
        self._pending = count
        self._oldest = self._frame_time(committed) if count else None
        self._write_sidecar()  # the offset now belongs to this file, whatever it said before
        if count:
            log.info("spool %s: %d undelivered frames from an earlier run", self.path, count)

    def _upgrade_legacy(self, size: int) -> None:
        """A spool of the format before file ids (frames from 0, an 8-byte offset sidecar):
        its undelivered frames are copied into a file of this format, nothing dropped."""
        raw = os.pread(self._offset_fd, 8, 0)
        pos = struct.unpack("<Q", raw[:8])[0] if len(raw) >= 8 else 0
        pos = 0 if pos > size else pos
        tail = bytearray()
        while pos + _HEADER.size <= size:
            length, crc, _ = _HEADER.unpack(os.pread(self._fd, _HEADER.size, pos))
            if length > MAX_FRAME:
                break
            payload = os.pread(self._fd, length, pos + _HEADER.size)
            if len(payload) != length or zlib.crc32(payload) != crc:
                break
            tail += os.pread(self._fd, _HEADER.size + length, pos)
            pos += _HEADER.size + length
        new_id = os.urandom(8)
        tmp = Path(f"{self.path}.upgrade")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        os.write(fd, _FILE_HEADER.pack(_MAGIC, new_id) + bytes(tail))
        os.fsync(fd)
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        os.close(self._fd)
        self._fd = fd
        os.pwrite(self._offset_fd, _SIDECAR.pack(new_id, HEADER_BYTES), 0)
        os.fsync(self._offset_fd)
        log.warning("spool %s: upgraded from the old format (%d bytes kept)", self.path, len(tail))

    def _reset(self) -> None:
        """Empty file, new id; the sidecar names the new id (written before any frame)."""
        os.ftruncate(self._fd, 0)
        self._base += max(self._end - HEADER_BYTES, 0)
        self._id = os.urandom(8)
        self._end = self._committed = self._read_pos = 0
        self._pending = 0
        self._oldest = None
        self._write_sidecar()

    def _write_sidecar(self) -> None:
        os.pwrite(self._offset_fd, _SIDECAR.pack(self._id, max(self._committed, HEADER_BYTES)), 0)
        os.fsync(self._offset_fd)

    def _frame_time(self, offset: int) -> float:
        return float(_HEADER.unpack(os.pread(self._fd, _HEADER.size, offset))[2])

    # -- state -----------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Frames accepted and not yet delivered."""
        return self._pending

    @property
    def pending_bytes(self) -> int:
        return self._end - max(self._committed, min(self._end, HEADER_BYTES))

    @property
    def file_bytes(self) -> int:
        """The spool file's size (delivered frames not yet compacted away included)."""
        return self._end

    @property
    def disk_full(self) -> bool:
        return self._disk_full_at is not None

    def oldest_age(self) -> float:
        """Seconds since the oldest undelivered frame was appended (0 when empty)."""
        return 0.0 if self._oldest is None else max(0.0, self._clock() - self._oldest)

    def full_reason(self) -> str | None:
        since = None if self._disk_full_at is None else self._clock() - self._disk_full_at
        if since is not None and since < DISK_RETRY_SECONDS:
            return f"disk full: {self._disk_error}"
        if self.pending_bytes >= self.max_bytes:
            return f"spool holds {self.pending_bytes} bytes, limit {self.max_bytes}"
        if self._oldest is not None and self.oldest_age() >= self.max_age_seconds:
            return f"oldest spooled record is {self.oldest_age():.0f}s old, limit {self.max_age_seconds:.0f}s"
        return None

    # -- writing ---------------------------------------------------------------------------

    def append(self, payload: bytes) -> int:
        """Append one frame; returns its (logical) offset. Raises SpoolFull past the bounds."""
        reason = self.full_reason()
        if reason is not None:
            raise SpoolFull(reason, disk_full=self.disk_full)
        now = self._clock()
        frame = _HEADER.pack(len(payload), zlib.crc32(payload), now) + payload
        start = self._end
        if start == 0:  # a new file: its header goes first, in the same write
            frame = _FILE_HEADER.pack(_MAGIC, self._id) + frame
        try:
            written = os.write(self._fd, frame)
            if written != len(frame):
                raise OSError(errno.ENOSPC, f"short write ({written} of {len(frame)} bytes)")
        except OSError as exc:
            if exc.errno not in _DISK_FULL:
                raise
            self._undo(start)
            self._disk_full_at, self._disk_error = now, os.strerror(exc.errno or errno.ENOSPC)
            log.error("spool %s: disk full (%s): refusing records", self.path, self._disk_error)
            raise SpoolFull(f"disk full: {self._disk_error}", disk_full=True) from None
        self._disk_full_at = None
        if start == 0:
            start = HEADER_BYTES
            self._committed = self._read_pos = HEADER_BYTES
        self._end = start + _HEADER.size + len(payload)
        if self._pending == 0:
            self._oldest = now
        self._pending += 1
        self._appended += 1
        return self._base + start

    def _undo(self, offset: int) -> None:
        try:
            os.ftruncate(self._fd, offset)
        except OSError:  # the torn frame is cut off on the next open instead
            log.warning("spool %s: could not cut a partial frame", self.path)

    async def sync(self) -> None:
        """Return once every frame appended before the call is on disk (group fsync).

        Raises SpoolFull when the disk refuses (ENOSPC on fsync, e.g. on NFS or tmpfs)."""
        target = self._appended
        while self._synced < target:
            if self._sync_task is None or self._sync_task.done():
                self._sync_task = asyncio.create_task(self._fsync())
            await asyncio.shield(self._sync_task)

    async def _fsync(self) -> None:
        upto = self._appended
        try:
            await asyncio.to_thread(os.fsync, self._fd)
        except OSError as exc:
            if exc.errno not in _DISK_FULL:
                raise
            self._disk_full_at, self._disk_error = self._clock(), os.strerror(exc.errno or 0)
            raise SpoolFull(f"disk full: {self._disk_error}", disk_full=True) from None
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
            out.append((self._base + pos, os.pread(self._fd, length, pos + _HEADER.size)))
            pos += _HEADER.size + length
            size += length
        self._read_pos = pos
        return out

    def rewind(self) -> None:
        """Read again from the first undelivered frame (after a failed delivery)."""
        self._read_pos = self._committed

    def commit(self, frames: int) -> None:
        """The next ``frames`` undelivered frames were delivered: forget them (fsynced)."""
        pos = self._committed
        for _ in range(frames):
            pos += _HEADER.size + _HEADER.unpack(os.pread(self._fd, _HEADER.size, pos))[0]
        self._pending -= frames
        if pos >= self._end:
            # Empty: truncate and take a new id; the old sidecar can then match nothing.
            self._end = pos
            self._reset()
            return
        self._committed = pos
        self._read_pos = max(self._read_pos, pos)
        self._oldest = self._frame_time(pos)
        delivered = pos - HEADER_BYTES
        if delivered >= self.compact_bytes and self._end - pos <= delivered:
            self._compact()
        else:
            self._write_sidecar()

    def _compact(self) -> None:
        """Copy the undelivered tail to a new file with a new id and rename it over this one."""
        tmp = Path(f"{self.path}.compact")
        new_id = os.urandom(8)
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        try:
            os.write(fd, _FILE_HEADER.pack(_MAGIC, new_id))
            pos, left = self._committed, self._end - self._committed
            while left > 0:
                chunk = os.pread(self._fd, min(left, 1 << 20), pos)
                os.write(fd, chunk)
                pos += len(chunk)
                left -= len(chunk)
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            log.warning("spool %s: compaction failed (%s); keeping the file", self.path, exc)
            self._write_sidecar()
            return
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)  # the rename is durable before the sidecar names new_id
        os.close(self._fd)
        self._fd = fd
        shift = self._committed - HEADER_BYTES
        self._base += shift
        self._end -= shift
        self._read_pos -= shift
        self._committed = HEADER_BYTES
        self._id = new_id
        self._write_sidecar()
        self.compactions += 1
