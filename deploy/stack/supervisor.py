"""Process supervision: start a ServiceSpec detached, wait for its health check, stop it."""

from __future__ import annotations

import shutil
import time

from deploy.stack import process
from deploy.stack.httpcheck import http_ok
from deploy.stack.paths import StatePaths
from deploy.stack.ports import port_free
from deploy.stack.services import ServiceSpec


class ServiceError(RuntimeError):
    """A service failed to start or to become healthy."""


def running(paths: StatePaths, spec: ServiceSpec) -> bool:
    return process.read_pid(paths, spec.name) is not None


def healthy(spec: ServiceSpec) -> bool:
    return http_ok(spec.health_url)


def start(paths: StatePaths, spec: ServiceSpec) -> bool:
    """Start ``spec`` unless it runs already. True if this call started it."""
    if running(paths, spec):
        return False
    if shutil.which(spec.argv[0]) is None:
        raise ServiceError(f"{spec.name}: {spec.argv[0]} not found (run `make install`)")
    for port in spec.ports:
        if not port_free(port):
            raise ServiceError(f"{spec.name}: port {port} is taken by another program")
    process.start_detached(paths, spec.name, spec.argv, env=spec.env, cwd=paths.root)
    return True


def wait_healthy(paths: StatePaths, spec: ServiceSpec, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not healthy(spec):
        log = paths.log(spec.name)
        if not running(paths, spec):
            raise ServiceError(
                f"{spec.name} exited during start-up; see {log}:\n{process.tail(log)}"
            )
        if time.monotonic() > deadline:
            raise ServiceError(
                f"{spec.name} not healthy after {timeout:.0f}s ({spec.health_url}); see {log}"
            )
        time.sleep(0.2)


def stop(paths: StatePaths, name: str, timeout: float = 30.0) -> bool:
    return process.stop(paths, name, timeout)
