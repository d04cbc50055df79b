"""Tools built from the Go module proxy into the tool cache: helm, kubeconform, controller-gen.

The deployment files (``deploy/helm/ripple``) are checked with these tools, so they come
the way Kafka's jars do: by the ordinary client (``go install``) at a pinned version, once,
into ``$RIPPLE_TOOL_CACHE`` (default ``~/.cache/ripple``) under ``go-bin/<tool>-<version>``.
Nothing is downloaded but Go modules. ``python -m deploy.stack.gotools`` builds them all and
prints their paths (``make install`` runs it).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from deploy.stack.paths import jar_cache_root

log = logging.getLogger(__name__)


class ToolError(RuntimeError):
    """A Go tool could not be built."""


@dataclass(frozen=True)
class GoTool:
    name: str  # the binary's name
    package: str  # the main package for `go install`
    version: str

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"


HELM = GoTool("helm", "helm.sh/helm/v3/cmd/helm", "v3.22.0")
KUBECONFORM = GoTool("kubeconform", "github.com/yannh/kubeconform/cmd/kubeconform", "v0.8.0")
# Generates the prometheus-operator CRDs (PrometheusRule, ServiceMonitor) from its Go types.
CONTROLLER_GEN = GoTool(
    "controller-gen", "sigs.k8s.io/controller-tools/cmd/controller-gen", "v0.23.0"
)
TOOLS = (HELM, KUBECONFORM, CONTROLLER_GEN)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive file lock: parallel test sessions may build the same tool at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def tool_cache_root() -> Path:
    env = os.environ.get("RIPPLE_TOOL_CACHE")
    return Path(env).expanduser() if env else jar_cache_root()


def bin_dir(tool: GoTool) -> Path:
    return tool_cache_root() / "go-bin" / f"{tool.name}-{tool.version}"


def ensure(tool: GoTool) -> Path:
    """The path of the tool's binary, built with ``go install`` on first use."""
    target = bin_dir(tool)
    binary = target / tool.name
    if binary.is_file():
        return binary
    with locked(target.with_name(f".{target.name}.lock")):
        if binary.is_file():
            return binary
        go = shutil.which("go")
        if go is None:
            raise ToolError(f"Go (1.24 or newer) is needed to build {tool.name}")
        tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        # GOWORK=off: the tool's own go.mod decides its dependencies; CGO off: a static binary.
        env = {**os.environ, "GOBIN": str(tmp), "GOWORK": "off", "CGO_ENABLED": "0"}
        log.info("building %s with go install into %s", tool.spec, target)
        res = subprocess.run(
            [go, "install", "-trimpath", tool.spec], env=env, capture_output=True, text=True
        )
        if res.returncode != 0 or not (tmp / tool.name).is_file():
            shutil.rmtree(tmp, ignore_errors=True)
            raise ToolError(f"go install {tool.spec} failed:\n{res.stdout}{res.stderr}")
        # Atomic: the versioned directory either holds the binary or does not exist.
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return binary


def helm() -> Path:
    return ensure(HELM)


def kubeconform() -> Path:
    return ensure(KUBECONFORM)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        for tool in TOOLS:
            print(f"{tool.name} {tool.version}: {ensure(tool)}")
    except ToolError as exc:
        print(f"ripple: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
