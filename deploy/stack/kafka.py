"""Apache Kafka in KRaft mode, single node (combined broker + controller), from Maven Central.

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
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class KafkaSpec:
    version: str = "3.9.1"
    port: int = 19092
    controller_port: int = 19093
    partitions: int = 6
    heap: str = "512m"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

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


def _server_properties(spec: KafkaSpec, data_dir: Path) -> str:
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{spec.controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{spec.port},CONTROLLER://127.0.0.1:{spec.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{spec.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": str(spec.partitions),
        "auto.create.topics.enable": "true",
        # One broker: every internal topic has one replica, or it can never be created.
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
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
    if spec.major >= 4:
        props["share.coordinator.state.topic.replication.factor"] = "1"
        props["share.coordinator.state.topic.min.isr"] = "1"
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


class Kafka:
    """One broker whose configuration, data and log live under the state dir."""

    def __init__(self, spec: KafkaSpec, paths: StatePaths) -> None:
        self.spec = spec
        self.paths = paths
        self.home = paths.home(NAME)
        self.data_dir = self.home / "data"
        self.properties = self.home / "server.properties"

    @property
    def bootstrap(self) -> str:
        return self.spec.bootstrap

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

    def prepare(self) -> Path:
        """Jars, configuration files and a formatted log dir; returns the jar dir."""
        jars = ensure_jars(self.spec.version)
        self.home.mkdir(parents=True, exist_ok=True)
        self.paths.ensure()
        self.properties.write_text(_server_properties(self.spec, self.data_dir))
        (self.home / "log4j.properties").write_text(_LOG4J)
        (self.home / "log4j2.properties").write_text(_LOG4J2)
        if not (self.data_dir / "meta.properties").exists():
            argv = self._java(
                jars,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                _cluster_id(self.home),
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
        return process.read_pid(self.paths, NAME)

    def start(self, timeout: float = 90.0) -> bool:
        """Start the broker unless it runs; wait until it answers metadata. True if started."""
        started = self.launch()
        self.wait_ready(timeout)
        return started

    def launch(self) -> bool:
        """Start the broker process unless it runs (no waiting). True if started."""
        if self.pid() is not None:
            return False
        for port in (self.spec.port, self.spec.controller_port):
            if not port_free(port):
                raise KafkaError(
                    f"port {port} is taken by another program; choose other stack ports"
                )
        jars = self.prepare()
        argv = self._java(jars, "kafka.Kafka", str(self.properties))
        process.start_detached(self.paths, NAME, argv, cwd=self.home)
        return True

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            rec = self.pid()
            if rec is None:
                raise KafkaError(
                    f"Kafka exited during start-up; see {self.paths.log(NAME)}:\n"
                    + process.tail(self.paths.log(NAME))
                )
            if self.healthy():
                return
            if time.monotonic() > deadline:
                raise KafkaError(
                    f"Kafka not ready after {timeout:.0f}s; see {self.paths.log(NAME)}"
                )
            time.sleep(0.25)

    def healthy(self) -> bool:
        return metadata_ok(self.bootstrap)

    def stop(self, timeout: float = 60.0) -> bool:
        # SIGTERM runs the broker's controlled shutdown (flushes logs, writes clean markers).
        return process.stop(self.paths, NAME, timeout)


def metadata_ok(bootstrap: str, timeout_ms: int = 5000) -> bool:
    """Ready means a metadata request succeeds and names a broker, not merely an open port."""
    host, _, port = bootstrap.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False  # skip the client (and its noisy connection errors) while nothing listens
    from kafka import KafkaAdminClient  # imported late: keeps `ripple --help` fast
    from kafka.errors import KafkaError as ClientError

    with quiet_client(logging.CRITICAL):
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap,
                request_timeout_ms=timeout_ms,
                client_id="ripple-health",
            )
        except (ClientError, OSError):
            return False
        try:
            brokers = admin.describe_cluster().get("brokers")
            admin.list_topics()
            return bool(brokers)
        except (ClientError, OSError):
            return False
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
