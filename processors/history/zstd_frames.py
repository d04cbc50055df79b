"""Zstandard files made of independent frames, and the lines in them.

The archive appends one complete frame per flush, so a file cut short by a crash is a run of
complete frames plus, at worst, the beginning of one more. Reading decodes frame after frame
and, when the last frame is cut short, keeps its complete lines and drops the partial one
(with a warning) instead of passing half a record on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import IO

import zstandard

log = logging.getLogger(__name__)
CHUNK = 1 << 20


def compress_frame(data: bytes, level: int = 3) -> bytes:
    """One complete frame (content size in the header, checksum at the end)."""
    return zstandard.ZstdCompressor(level=level, write_checksum=True).compress(data)


class FrameReader:
    """Decompressed chunks of every frame in ``fh``; ``truncated`` tells, at the end,
    whether the last frame was cut short."""

    def __init__(self, fh: IO[bytes], name: str = "") -> None:
        self.fh = fh
        self.name = name
        self.truncated = False

    def __iter__(self) -> Iterator[bytes]:
        dctx = zstandard.ZstdDecompressor()
        obj = dctx.decompressobj()
        pending = False  # input fed to ``obj`` whose frame has not ended yet
        while chunk := self.fh.read(CHUNK):
            while chunk:
                out = obj.decompress(chunk)
                pending = True
                if out:
                    yield out
                if not obj.eof:
                    break
                # A frame ended: what follows it starts the next one.
                chunk = obj.unused_data
                obj = dctx.decompressobj()
                pending = False
        self.truncated = pending


def iter_lines(chunks: Iterator[bytes]) -> Iterator[tuple[bytes, bool]]:
    """(line, complete) pairs; the last line is incomplete when it has no newline."""
    rest = b""
    for chunk in chunks:
        if rest:
            chunk = rest + chunk
        lines = chunk.split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line, True
    if rest:
        yield rest, False


def zstd_lines(fh: IO[bytes], name: str = "") -> Iterator[bytes]:
    """Lines of a (multi-frame) zstd file, without their line ends."""
    reader = FrameReader(fh, name)
    held: bytes | None = None  # the unterminated last line, judged once the file ends
    for line, complete in iter_lines(iter(reader)):
        if complete:
            yield line
        else:
            held = line
    if reader.truncated:
        log.warning(
            "%s: the last zstd frame is cut short (an interrupted write); "
            "its complete lines were read%s",
            name or "zstd file",
            ", its partial last line dropped" if held else "",
        )
    elif held:
        yield held
