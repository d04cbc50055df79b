"""What the supervisor runs: one ServiceSpec per background process.

Ripple's own processes (workers, website collector, platform ingestors) are derived from the
configuration; a process whose command module is not built yet is left out, so the stack
runs at every stage of the project. Contract for every Ripple process: it serves Prometheus
metrics at ``http://127.0.0.1:<metrics_port>/metrics``, which is also its health check
(workers: ``/healthz``). Platform ingestors find their port in ``$RIPPLE_METRICS_PORT``.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field

from ingest.config import Config

WORKER_MODULE = "deploy.commands.worker"

# Prometheus job per kind of Ripple process.
JOB_WORKER = "ripple-worker"
JOB_COLLECTOR = "ripple-collector"
JOB_INGEST = "ripple-ingest"
RIPPLE_JOBS = (JOB_WORKER, JOB_COLLECTOR, JOB_INGEST)

# Platform ingestors get metrics ports from here up (one each, in configuration order).
SOURCE_PORT_OFFSET = 100


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    argv: list[str]
    health_url: str
    env: dict[str, str] = field(default_factory=dict)
    metrics_port: int | None = None
    job: str | None = None  # the Prometheus job that scrapes it
    ports: tuple[int, ...] = ()  # ports it binds: checked free before it starts


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _ripple(*args: str) -> list[str]:
    # The interpreter running `ripple up` is the venv's: the same code runs every service.
    return [sys.executable, "-m", "deploy.cli", *args]


def _http_service(
    name: str, argv: list[str], port: int, job: str, env: dict[str, str], health: str = "/metrics"
) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        argv=argv,
        health_url=f"http://127.0.0.1:{port}{health}",
        env=env,
        metrics_port=port,
        job=job,
        ports=(port,),
    )


def ripple_services(cfg: Config, state_dir: str, bootstrap: str) -> list[ServiceSpec]:
    """Workers x ``stack.workers``, the collector when ``[[sites]]`` exist, enabled sources.

    Each gets the stack's broker (``--bootstrap``), whatever ``kafka.bootstrap`` says."""
    from deploy.commands.ingest import SOURCES  # cheap: a dict of module names

    conf = [*(["--config", cfg.path] if cfg.path else []), "--bootstrap", bootstrap]
    specs: list[ServiceSpec] = []

    def env(name: str) -> dict[str, str]:
        return {"RIPPLE_STATE_DIR": state_dir, "RIPPLE_SERVICE": name}

    if module_exists(WORKER_MODULE):
        for i in range(cfg.stack.workers):
            port = cfg.stack.worker_web_port + i
            name = f"worker-{i + 1}"
            argv = _ripple("worker", *conf, "--web-port", str(port), "--state-dir", state_dir)
            specs.append(_http_service(name, argv, port, JOB_WORKER, env(name), "/healthz"))
    if cfg.sites and module_exists(SOURCES["web"]):
        port = cfg.collector.port
        argv = _ripple("ingest", "web", *conf)
        specs.append(_http_service("collector", argv, port, JOB_COLLECTOR, env("collector")))
    enabled = [n for n, table in cfg.sources.items() if table.get("enabled") is True]
    for i, source in enumerate(enabled):
        module = SOURCES.get(source)
        if module is None or source == "web" or not module_exists(module):
            continue
        port = cfg.stack.worker_web_port + SOURCE_PORT_OFFSET + i
        name = f"ingest-{source}"
        argv = _ripple("ingest", source, *conf)
        metrics_env = {**env(name), "RIPPLE_METRICS_PORT": str(port)}
        specs.append(_http_service(name, argv, port, JOB_INGEST, metrics_env))
    return specs
