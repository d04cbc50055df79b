"""Apache Kafka in KRaft mode from Maven Central: one node, or a cluster of combined
broker + controller nodes (``stack.brokers``; every node a voter of the quorum).

The jars come from ``deploy/kafka/pom.xml`` through the ordinary ``mvn`` client, once per
version, into the jar cache. The broker's version is one setting (``stack.kafka_version``):
4.x switches the logging backend (log4j2) and adds the share-coordinator settings.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deploy.stack import process
from deploy.stack.paths import DEPLOY_DIR, StatePaths, jar_cache_root
from deploy.stack.ports import port_free

log = logging.getLogger(__name__)

NAME = "kafka"
POM = DEPLOY_DIR / "kafka" / "pom.xml"
JVM_OPTS = (
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)


class KafkaError(RuntimeError):
    """Kafka could not be prepared, started or reached."""


# Node i (0-based) of a cluster listens on port + i * PORT_STEP, controller_port + i * PORT_STEP.
PORT_STEP = 100


@dataclass(frozen=True)
class Node:
    """One combined broker + controller: its KRaft id, process name and ports."""

    node_id: int
    name: str
    port: int
    controller_port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True)
class KafkaSpec:
    version: str = "3.9.1"
    port: int = 19092
    controller_port: int = 19093
    partitions: int = 6
    heap: str = "512m"
    brokers: int = 1
    # Explicit nodes (tests on free ports); default: ``brokers`` nodes from port, PORT_STEP apart.
    node_list: tuple[Node, ...] = ()
    # Extra broker properties for every node, applied last (e.g. a SASL_SSL listener).
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def nodes(self) -> tuple[Node, ...]:
        if self.node_list:
            return self.node_list
        if self.brokers == 1:  # the single node keeps the plain name (pid file, log, data)
            return (Node(1, NAME, self.port, self.controller_port),)
        return tuple(
            Node(i + 1, f"{NAME}-{i + 1}", self.port + i * PORT_STEP,
                 self.controller_port + i * PORT_STEP)
            for i in range(self.brokers)
        )  # fmt: skip

    @property
    def bootstrap(self) -> str:
        """Every broker, comma-separated: clients reach the cluster while one node is down."""
        return ",".join(n.address for n in self.nodes)

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


# --- jars ---------------------------------------------------------------------------------


def jar_dir(version: str) -> Path:
    return jar_cache_root() / f"kafka-{version}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Several processes (parallel test sessions, `ripple up`) may want the jars at once.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_jars(version: str) -> Path:
    """The directory of Kafka's runtime jars, copied by Maven on first use."""
    target = jar_dir(version)
    if target.is_dir():
        return target
    with _locked(target.with_name(f".kafka-{version}.lock")):
        if target.is_dir():
            return target
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaError("Maven (mvn) is needed to fetch Kafka's jars: apt-get install maven")
        tmp = target.with_name(f".kafka-{version}.partial-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        argv = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(POM),
            f"-Dkafka.version={version}",
            *(["-Dkafka4"] if int(version.split(".")[0]) >= 4 else []),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={tmp}",
        ]
        log.info("fetching Kafka %s jars with Maven into %s", version, target)
        res = subprocess.run(argv, capture_output=True, text=True)
        if res.returncode != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
            shutil.rmtree(tmp, ignore_errors=True)
            raise KafkaError(f"mvn failed to copy Kafka {version} jars:\n{res.stdout}{res.stderr}")
        # The rename is atomic: the cache directory either holds every jar or does not exist.
        tmp.rename(target)
    return target


# --- configuration ------------------------------------------------------------------------


def _server_properties(spec: KafkaSpec, data_dir: Path, node: Node | None = None) -> str:
    # One broker: every internal topic has one replica, or it can never be created. A
    # cluster: three replicas (at most), two in sync, so one node can fail without loss.
    node = node or spec.nodes[0]
    replicas = min(len(spec.nodes), 3)
    min_isr = 1 if replicas == 1 else 2
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in spec.nodes)
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": str(spec.partitions),
        "auto.create.topics.enable": "true",
        "default.replication.factor": str(replicas),
        "min.insync.replicas": str(min_isr),
        "offsets.topic.replication.factor": str(replicas),
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(min_isr),
        # Fewer internal partitions make the first group join / transaction much faster.
        "offsets.topic.num.partitions": "6",
        "transaction.state.log.num.partitions": "6",
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "log.cleaner.dedupe.buffer.size": str(32 * 1024 * 1024),
        "log.retention.hours": "168",
        # Compacted topics (changelogs) get cleaned soon after their segments roll.
        "log.cleaner.backoff.ms": "5000",
    }
    if replicas > 1:
        # A dead node is fenced (its partitions get new leaders) after 4s, not the default 9s.
        props["broker.session.timeout.ms"] = "4000"
        props["broker.heartbeat.interval.ms"] = "1000"
    if spec.major >= 4:
        props["share.coordinator.state.topic.replication.factor"] = str(replicas)
        props["share.coordinator.state.topic.min.isr"] = str(min_isr)
    props.update(spec.extra)
    lines = ["# Generated by ripple (deploy/stack/kafka.py); edits are overwritten."]
    lines += [f"{k}={v}" for k, v in props.items()]
    return "\n".join(lines) + "\n"


# Logging goes to stdout, which the supervisor sends to the one log file of the service.
_LOG4J = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.org.apache.kafka.storage.internals.log=WARN
log4j.logger.kafka.log=WARN
"""

_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = STDOUT
logger.req.name = kafka.request.logger
logger.req.level = warn
logger.state.name = state.change.logger
logger.state.level = warn
logger.log.name = kafka.log
logger.log.level = warn
logger.storage.name = org.apache.kafka.storage.internals.log
logger.storage.level = warn
"""


def _cluster_id(home: Path) -> str:
    """The cluster id, created once per state dir (a base64url UUID, as Kafka makes them)."""
    file = home / "cluster.id"
    if file.exists():
        return file.read_text().strip()
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):  # Kafka avoids these: they read as CLI flags
            break
    file.write_text(cid + "\n")
    return cid


class KafkaNode:
    """One broker + controller process whose configuration, data and log live under the
    state dir (``<state>/<name>/``, ``logs/<name>.log``, ``pids/<name>.pid``)."""

    def __init__(self, spec: KafkaSpec, node: Node, paths: StatePaths) -> None:
        self.spec = spec
        self.node = node
        self.name = node.name
        self.paths = paths
        self.home = paths.home(node.name)
        self.data_dir = self.home / "data"
        self.properties = self.home / "server.properties"

    @property
    def bootstrap(self) -> str:
        return self.node.address

    def _java(self, jars: Path, main: str, *args: str, heap: bool = True) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise KafkaError(
                "Java 17 is needed to run Kafka: apt-get install openjdk-17-jre-headless"
            )
        if self.spec.major >= 4:
            logcfg = f"-Dlog4j2.configurationFile=file:{self.home / 'log4j2.properties'}"
        else:
            logcfg = f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}"
        opts = [o if not o.startswith("-Xmx") else f"-Xmx{self.spec.heap}" for o in JVM_OPTS]
        return [java, *(opts if heap else ["-Xmx256m"]), logcfg, "-cp", f"{jars}/*", main, *args]

    def prepare(self, cluster_id: str) -> Path:
        """Jars, configuration files and a formatted log dir; returns the jar dir."""
        jars = ensure_jars(self.spec.version)
        self.home.mkdir(parents=True, exist_ok=True)
        self.paths.ensure()
        self.properties.write_text(_server_properties(self.spec, self.data_dir, self.node))
        (self.home / "log4j.properties").write_text(_LOG4J)
        (self.home / "log4j2.properties").write_text(_LOG4J2)
        if not (self.data_dir / "meta.properties").exists():
            argv = self._java(
                jars,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.properties),
                "--ignore-formatted",
                heap=False,
            )
            res = subprocess.run(argv, capture_output=True, text=True)
            if res.returncode != 0:
                raise KafkaError(f"formatting {self.data_dir} failed:\n{res.stdout}{res.stderr}")
        return jars

    def pid(self) -> process.PidRecord | None:
        return process.read_pid(self.paths, self.name)

    def launch(self, cluster_id: str) -> bool:
        """Start the process unless it runs (no waiting). True if started."""
        if self.pid() is not None:
            return False
        for port in (self.node.port, self.node.controller_port):
            if not port_free(port):
                raise KafkaError(
                    f"port {port} is taken by another program; choose other stack ports"
                )
        jars = self.prepare(cluster_id)
        argv = self._java(jars, "kafka.Kafka", str(self.properties))
        process.start_detached(self.paths, self.name, argv, cwd=self.home)
        return True

    def healthy(self) -> bool:
        """Answers metadata and is itself a registered (unfenced) broker of the cluster."""
        return self.node.node_id in broker_ids(self.bootstrap)

    def kill(self) -> None:
        """SIGKILL (tests: a broker that crashes); the pid file goes with it."""
        import signal

        rec = self.pid()
        if rec is not None:
            os.kill(rec.pid, signal.SIGKILL)
            process.wait_gone(rec, 10.0)
            self.paths.pid(self.name).unlink(missing_ok=True)


class Kafka:
    """The local Kafka: ``spec.brokers`` nodes (one by default), each broker and voter."""

    def __init__(self, spec: KafkaSpec, paths: StatePaths) -> None:
        self.spec = spec
        self.paths = paths
        self.nodes = [KafkaNode(spec, n, paths) for n in spec.nodes]
        # One cluster id for every node, kept beside the first node's data.
        self.home = paths.home(NAME)

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    @property
    def bootstrap(self) -> str:
        return self.spec.bootstrap

    def node(self, name: str) -> KafkaNode:
        return next(n for n in self.nodes if n.name == name)

    def cluster_id(self) -> str:
        self.home.mkdir(parents=True, exist_ok=True)
        return _cluster_id(self.home)

    def prepare(self) -> Path:
        """Jars, configuration files and formatted log dirs; returns the jar dir."""
        cid = self.cluster_id()
        return [n.prepare(cid) for n in self.nodes][0]

    def pid(self) -> process.PidRecord | None:
        """The first running node's process (None when none runs)."""
        return next((rec for n in self.nodes if (rec := n.pid()) is not None), None)

    def start(self, timeout: float = 90.0) -> bool:
        """Start the nodes that do not run; wait until each answers metadata. True if any
        was started."""
        started = self.launch()
        self.wait_ready(timeout)
        return started

    def launch(self) -> bool:
        """Start every node that does not run (side by side: a cluster needs a majority of
        its voters before any node is ready). True if any was started."""
        cid = self.cluster_id()
        return any([n.launch(cid) for n in self.nodes])

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while True:
                if node.pid() is None:
                    log_file = self.paths.log(node.name)
                    raise KafkaError(
                        f"Kafka ({node.name}) exited during start-up; see {log_file}:\n"
                        + process.tail(log_file)
                    )
                if node.healthy():
                    break
                if time.monotonic() > deadline:
                    raise KafkaError(
                        f"Kafka ({node.name}) not ready after {timeout:.0f}s; "
                        f"see {self.paths.log(node.name)}"
                    )
                time.sleep(0.25)

    def healthy(self) -> bool:
        return all(n.healthy() for n in self.nodes)

    def stop(self, timeout: float = 60.0) -> bool:
        # SIGTERM runs each broker's controlled shutdown (flushes logs, writes clean markers).
        return bool(process.stop_many(self.paths, self.names, timeout))


def metadata_ok(bootstrap: str, timeout_ms: int = 5000) -> bool:
    """Ready means a metadata request succeeds and names a broker, not merely an open port."""
    return bool(broker_ids(bootstrap, timeout_ms))


def broker_ids(bootstrap: str, timeout_ms: int = 5000) -> set[int]:
    """The ids of the brokers registered in the cluster, as the first address sees them
    (empty when it does not answer)."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return set()  # skip the client (and its noisy connection errors) while nothing listens
    from kafka import KafkaAdminClient  # imported late: keeps `ripple --help` fast
    from kafka.errors import KafkaError as ClientError

    from ingest.kafka_client import client_options

    with quiet_client(logging.CRITICAL):
        try:
            admin = KafkaAdminClient(
                **client_options(bootstrap, "kafka-python"),
                request_timeout_ms=timeout_ms,
                client_id="ripple-health",
            )
        except (ClientError, OSError):
            return set()
        try:
            brokers = admin.describe_cluster().get("brokers") or []
            admin.list_topics()
            return {int(b["broker_id"]) for b in brokers}
        except (ClientError, OSError):
            return set()
        finally:
            admin.close()


@contextlib.contextmanager
def quiet_client(level: int = logging.WARNING) -> Iterator[None]:
    """Keep kafka-python's per-connection INFO chatter (and, for probes, errors) out of logs."""
    client_log = logging.getLogger("kafka")
    old = client_log.level
    client_log.setLevel(max(level, old))
    try:
        yield
    finally:
        client_log.setLevel(old)


def main(argv: list[str] | None = None) -> int:
    """``python -m deploy.stack.kafka [VERSION]``: fetch the jars (used by ``make install``)."""
    import argparse

    from ingest.config import load_config

    parser = argparse.ArgumentParser(description="Fetch Kafka's runtime jars into the jar cache.")
    parser.add_argument("version", nargs="?", help="Kafka version (default stack.kafka_version)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    version = args.version or load_config().stack.kafka_version
    try:
        print(ensure_jars(version))
    except KafkaError as exc:
        print(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
