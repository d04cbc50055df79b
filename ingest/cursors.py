"""Durable per-source cursors: one JSON file per source, replaced atomically.

The runner saves a cursor only after Kafka acknowledged every event before it, so a crash
between the two resumes from an older cursor (at-least-once; event ids make the repeat
harmless downstream) and never skips events.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from ingest.config import Config

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def cursor_dir(config: Config, override: str | os.PathLike[str] | None = None) -> Path:
    """``<state_dir>/cursors`` unless overridden; a relative state dir is taken from the cwd."""
    if override:
        return Path(override)
    return Path(config.stack.state_dir) / "cursors"


class CursorStore:
    """Loads and saves the cursor of each source under ``directory``."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path(self, source: str) -> Path:
        return self.directory / f"{_SAFE.sub('_', source)}.json"

    def load(self, source: str) -> Any:
        """The saved cursor, or None when there is none (or it is unreadable)."""
        try:
            data = json.loads(self.path(source).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return data.get("cursor") if isinstance(data, dict) else None

    def save(self, source: str, cursor: Any) -> None:
        """Write tmp, fsync, rename over the old file, fsync the directory."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.path(source)
        tmp = final.with_suffix(f".json.tmp{os.getpid()}")
        payload = json.dumps({"source": source, "cursor": cursor}, separators=(",", ":"))
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
