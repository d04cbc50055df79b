"""Where the stack keeps its state: one directory, one log file and one pid file per service."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The repository root (deploy/ lives in it; the install is editable).
REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"


def jar_cache_root() -> Path:
    """Kafka's jars are shared by every state dir: ``$RIPPLE_JAR_CACHE`` or ~/.cache/ripple."""
    env = os.environ.get("RIPPLE_JAR_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ripple"


@dataclass(frozen=True)
class StatePaths:
    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike[str]) -> StatePaths:
        return cls(Path(root).expanduser().resolve())

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def pid(self, service: str) -> Path:
        return self.pids / f"{service}.pid"

    def home(self, service: str) -> Path:
        """A service's own data and generated configuration."""
        return self.root / service

    def ensure(self) -> None:
        for d in (self.root, self.logs, self.pids):
            d.mkdir(parents=True, exist_ok=True)
