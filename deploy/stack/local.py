"""The local stack as one object: Kafka, Alertmanager, Prometheus, the webhook receiver
Alertmanager notifies, and Ripple's processes.

``up`` is idempotent (it starts only what is not running), ``down`` stops everything that has
a pid file under the state dir (Ripple's processes first, Kafka last) and keeps the data.
A manifest (``stack.json``) records what runs where, so ``status`` and ``down`` need only
the state dir.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from deploy.stack import alertmanager, process, prometheus, supervisor, webhook_receiver
from deploy.stack import kafka as kafka_mod
from deploy.stack.httpcheck import http_ok
from deploy.stack.kafka import Kafka, KafkaSpec
from deploy.stack.paths import StatePaths
from deploy.stack.process import read_pid
from deploy.stack.services import ServiceSpec, ripple_services
from ingest.config import Config
from ingest.kafka_client import KafkaAccess
from processors.job import topology

MANIFEST = "stack.json"
INFRA = (kafka_mod.NAME, alertmanager.NAME, prometheus.NAME, webhook_receiver.NAME)


def _is_kafka(name: str) -> bool:
    """``kafka`` (one node) or ``kafka-<i>`` (a node of a cluster)."""
    return name == kafka_mod.NAME or name.startswith(f"{kafka_mod.NAME}-")


@dataclass
class Component:
    name: str
    where: str  # bootstrap address or URL
    health: str  # "kafka:<bootstrap>" or an HTTP URL
    pid: int | None = None
    healthy: bool = False


@dataclass
class UpResult:
    started: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    components: list[Component] = field(default_factory=list)

    def note(self, name: str, started: bool) -> None:
        (self.started if started else self.already).append(name)


class LocalStack:
    def __init__(
        self,
        cfg: Config,
        state_dir: str | Path | None = None,
        workers: int | None = None,
        brokers: int | None = None,
    ):
        if workers is not None:
            cfg = msgspec.structs.replace(
                cfg, stack=msgspec.structs.replace(cfg.stack, workers=workers)
            )
        if brokers is not None:
            cfg = msgspec.structs.replace(
                cfg, stack=msgspec.structs.replace(cfg.stack, brokers=brokers)
            )
        self.cfg = cfg
        self.paths = StatePaths.at(state_dir or cfg.stack.state_dir)
        st = cfg.stack
        self.kafka = Kafka(
            KafkaSpec(
                version=st.kafka_version,
                port=st.kafka_port,
                controller_port=st.kafka_controller_port,
                partitions=cfg.kafka.partitions,
                brokers=st.brokers,
                # Three JVMs share the machine with everything else.
                heap="512m" if st.brokers == 1 else "384m",
            ),
            self.paths,
        )

    # --- addresses --------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.cfg.stack.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.cfg.stack.alertmanager_port}"

    @property
    def webhook_url(self) -> str:
        """The receiver of Alertmanager's notifications (a page, ``/messages`` as JSON)."""
        return webhook_receiver.url(self.cfg.stack.webhook_port)

    # --- specs ------------------------------------------------------------------------------
    def _alertmanager(self) -> ServiceSpec:
        return alertmanager.spec(self.paths, self.cfg.stack.alertmanager_port)

    def _prometheus(self) -> ServiceSpec:
        st = self.cfg.stack
        return prometheus.spec(self.paths, st.prometheus_port, st.alertmanager_port)

    def _webhook(self) -> ServiceSpec:
        return webhook_receiver.spec(self.paths, self.cfg.stack.webhook_port)

    def infra_specs(self) -> list[ServiceSpec]:
        """Alertmanager, Prometheus and the webhook receiver (Kafka is started on its own)."""
        return [self._alertmanager(), self._prometheus(), self._webhook()]

    def ripple_specs(self) -> list[ServiceSpec]:
        return ripple_services(self.cfg, str(self.paths.root), self.bootstrap)

    def _components(self, specs: list[ServiceSpec]) -> list[Component]:
        comps = [Component(n.name, n.bootstrap, f"kafka:{n.bootstrap}") for n in self.kafka.nodes]
        for s in specs:
            where = f"http://127.0.0.1:{s.metrics_port}" if s.metrics_port else s.health_url
            comps.append(Component(s.name, where, s.health_url))
        return comps

    # --- lifecycle --------------------------------------------------------------------------
    def prepare(self) -> Path:
        """Fetch Kafka's jars and format its log dir; nothing is started."""
        self.paths.ensure()
        return self.kafka.prepare()

    def up(self, timeout: float = 120.0, services: bool = True) -> UpResult:
        """Start what is not running and wait until all is healthy.

        With ``services=False`` only Kafka, Alertmanager, Prometheus and the webhook receiver
        start (tests)."""
        self.paths.ensure()
        st = self.cfg.stack
        alertmanager.prepare(self.paths, st.webhook_port)
        prometheus.prepare(self.paths, st.prometheus_port, st.alertmanager_port)
        infra = self.infra_specs()
        ripple = self.ripple_specs() if services else []
        result = UpResult(components=self._components([*infra, *ripple]))
        self._write_manifest(result.components)
        prometheus.write_targets(self.paths, ripple)

        # The infrastructure processes start side by side, then each is awaited.
        result.note(kafka_mod.NAME, self.kafka.launch())
        for spec in infra:
            result.note(spec.name, supervisor.start(self.paths, spec))
        self.kafka.wait_ready(timeout)
        for spec in infra:
            supervisor.wait_healthy(self.paths, spec, timeout)
        if prometheus.NAME in result.already:
            prometheus.reload(self.cfg.stack.prometheus_port)  # picks up new rule files
        # The local brokers are PLAINTEXT; the topics are replicated as [kafka] says.
        k = self.cfg.kafka
        local = KafkaAccess(self.bootstrap, replication_factor=k.replication_factor,
                            min_insync_replicas=k.min_insync_replicas)  # fmt: skip
        topology.ensure_topics(local, k.namespace, k.partitions)

        # Ripple's processes need the broker; start them all, then await each.
        for spec in ripple:
            result.note(spec.name, supervisor.start(self.paths, spec))
        for spec in ripple:
            supervisor.wait_healthy(self.paths, spec, timeout)
        result.components = self.status()
        return result

    def _write_manifest(self, comps: list[Component]) -> None:
        data = {
            "config": self.cfg.path,
            "bootstrap": self.bootstrap,
            "prometheus_url": self.prometheus_url,
            "alertmanager_url": self.alertmanager_url,
            "webhook_url": self.webhook_url,
            "components": [{"name": c.name, "where": c.where, "health": c.health} for c in comps],
        }
        (self.paths.root / MANIFEST).write_text(json.dumps(data, indent=2) + "\n")

    def manifest(self) -> dict[str, object] | None:
        try:
            data = json.loads((self.paths.root / MANIFEST).read_text())
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def status(self) -> list[Component]:
        """Every component of the last ``up`` (or of the configuration), probed now."""
        data = self.manifest()
        if data is None:
            comps = self._components([*self.infra_specs(), *self.ripple_specs()])
        else:
            comps = [Component(**c) for c in data["components"]]  # type: ignore[attr-defined]
        for c in comps:
            rec = read_pid(self.paths, c.name)
            c.pid = rec.pid if rec else None
            if c.pid is None:
                c.healthy = False
            elif c.health.startswith("kafka:"):
                c.healthy = kafka_mod.metadata_ok(c.health.removeprefix("kafka:"))
            else:
                c.healthy = http_ok(c.health)
        return comps

    def running(self) -> list[str]:
        """Names of the processes with a live pid file under the state dir."""
        if not self.paths.pids.is_dir():
            return []
        names = [p.stem for p in self.paths.pids.glob("*.pid")]
        return [n for n in names if read_pid(self.paths, n) is not None]

    def down(self, purge: bool = False) -> list[str]:
        """Stop every process (Ripple's first, Kafka last); with ``purge`` delete the state."""
        names = self.running()
        # Ripple's processes first (they flush to Kafka), then Prometheus, Alertmanager and
        # its webhook receiver, Kafka last (every node of a cluster); within a phase, side by side.
        phases = [
            [n for n in names if n not in INFRA and not _is_kafka(n)],
            [n for n in (prometheus.NAME, alertmanager.NAME, webhook_receiver.NAME) if n in names],
            [n for n in names if _is_kafka(n)],
        ]
        stopped: list[str] = []
        for phase in phases:
            timeout = 60.0 if any(_is_kafka(n) for n in phase) else 30.0
            stopped += process.stop_many(self.paths, phase, timeout)
        if purge:
            self.purge()
        return stopped

    def purge(self) -> None:
        root = self.paths.root
        # Refuse to delete a directory that is not a Ripple state dir.
        if root.is_dir() and not ((root / MANIFEST).exists() or (root / "pids").is_dir()):
            raise RuntimeError(f"{root} does not look like a Ripple state dir; not deleting it")
        shutil.rmtree(root, ignore_errors=True)
