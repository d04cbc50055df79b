"""The stack's generated configuration and process bookkeeping, without starting services
(except short-lived helper processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy.stack import alertmanager, process, prometheus
from deploy.stack.kafka import KafkaSpec, _server_properties, ensure_jars, jar_dir
from deploy.stack.paths import StatePaths
from deploy.stack.services import JOB_COLLECTOR, JOB_INGEST, JOB_WORKER, ripple_services
from ingest.config import Config, load_config


def _props(text: str) -> dict[str, str]:
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    return dict(ln.split("=", 1) for ln in lines)


def test_server_properties_single_node_kraft(tmp_path: Path) -> None:
    props = _props(
        _server_properties(KafkaSpec(port=1111, controller_port=2222, partitions=4), tmp_path)
    )
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:2222"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:1111,CONTROLLER://127.0.0.1:2222"
    assert props["log.dirs"] == str(tmp_path)
    assert props["num.partitions"] == "4"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "default.replication.factor",
    ):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert not any(k.startswith("share.coordinator") for k in props)


def test_kafka4_adds_share_coordinator_settings(tmp_path: Path) -> None:
    props = _props(_server_properties(KafkaSpec(version="4.1.1"), tmp_path))
    assert props["share.coordinator.state.topic.replication.factor"] == "1"
    assert props["share.coordinator.state.topic.min.isr"] == "1"


def test_jar_cache_is_per_version_and_overridable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIPPLE_JAR_CACHE", str(tmp_path))
    assert jar_dir("3.9.1") == tmp_path / "kafka-3.9.1"
    # An existing cache directory is used as is: no Maven run.
    (tmp_path / "kafka-3.9.1").mkdir()
    monkeypatch.setenv("PATH", "")
    assert ensure_jars("3.9.1") == tmp_path / "kafka-3.9.1"


def _config(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "ripple.toml"
    path.write_text(text)
    return load_config(path, env={})


def test_services_follow_the_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deploy.stack import services

    monkeypatch.setattr(services, "module_exists", lambda name: True)
    cfg = _config(
        tmp_path,
        """
[stack]
workers = 3
worker_web_port = 20000
[collector]
port = 20500
[[sites]]
name = "blog"
domains = ["example.com"]
[sources.bluesky]
enabled = true
[sources.reddit]
enabled = false
""",
    )
    specs = {s.name: s for s in ripple_services(cfg, str(tmp_path), "127.0.0.1:1")}
    assert sorted(specs) == ["collector", "ingest-bluesky", "worker-1", "worker-2", "worker-3"]
    assert [specs[f"worker-{i}"].metrics_port for i in (1, 2, 3)] == [20000, 20001, 20002]
    w = specs["worker-2"]
    assert w.argv[w.argv.index("worker") :] == [
        "worker",
        "--config",
        cfg.path,
        "--bootstrap",
        "127.0.0.1:1",
        "--web-port",
        "20001",
        "--state-dir",
        str(tmp_path),
    ]
    assert w.job == JOB_WORKER and w.health_url == "http://127.0.0.1:20001/healthz"
    assert specs["collector"].job == JOB_COLLECTOR and specs["collector"].metrics_port == 20500
    collector = specs["collector"].argv
    assert collector[-6:] == ["ingest", "web", "--config", cfg.path, "--bootstrap", "127.0.0.1:1"]
    src = specs["ingest-bluesky"]
    assert src.job == JOB_INGEST and src.env["RIPPLE_METRICS_PORT"] == str(src.metrics_port)
    assert len({s.metrics_port for s in specs.values()}) == len(specs)  # no port shared


def test_services_not_built_yet_are_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deploy.stack import services

    monkeypatch.setattr(services, "module_exists", lambda name: name == services.WORKER_MODULE)
    cfg = _config(tmp_path, '[[sites]]\nname = "s"\n[sources.x]\nenabled = true\n')
    assert [s.name for s in ripple_services(cfg, str(tmp_path), "b:1")] == ["worker-1"]


def test_prometheus_config_is_valid_and_lists_targets(tmp_path: Path) -> None:
    from deploy.stack.services import ServiceSpec

    paths = StatePaths.at(tmp_path)
    config = prometheus.write_config(paths, 9999, 9998)
    res = subprocess.run(
        ["promtool", "check", "config", str(config)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr
    doc = yaml.safe_load(config.read_text())
    assert doc["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9998"]
    assert doc["rule_files"] == [prometheus.RULES_GLOB]
    jobs = {c["job_name"] for c in doc["scrape_configs"]}
    assert {"prometheus", "alertmanager", JOB_WORKER, JOB_COLLECTOR, JOB_INGEST} <= jobs

    spec = ServiceSpec(
        "worker-1", ["x"], "http://127.0.0.1:7001/metrics", metrics_port=7001, job=JOB_WORKER
    )
    prometheus.write_targets(paths, [spec])
    groups = json.loads((prometheus.targets_dir(paths) / f"{JOB_WORKER}.json").read_text())
    assert groups == [{"targets": ["127.0.0.1:7001"], "labels": {"service": "worker-1"}}]
    assert json.loads((prometheus.targets_dir(paths) / f"{JOB_INGEST}.json").read_text()) == []


def test_alertmanager_config_is_valid(tmp_path: Path) -> None:
    config = alertmanager.write_config(StatePaths.at(tmp_path))
    res = subprocess.run(["amtool", "check-config", str(config)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    if alertmanager.PROJECT_CONFIG.exists():
        assert config.read_text() == alertmanager.PROJECT_CONFIG.read_text()


def test_pid_files_track_exactly_our_process(tmp_path: Path) -> None:
    paths = StatePaths.at(tmp_path)
    rec = process.start_detached(
        paths, "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"]
    )
    assert process.read_pid(paths, "sleeper") == rec
    assert "starting:" in paths.log("sleeper").read_text()
    assert process.stop(paths, "sleeper", timeout=5)
    assert not process.pid_alive(rec.pid, rec.start_ticks)
    assert not paths.pid("sleeper").exists()
    assert process.stop(paths, "sleeper") is False  # nothing left to stop


def test_stale_pid_file_is_not_trusted(tmp_path: Path) -> None:
    paths = StatePaths.at(tmp_path)
    paths.ensure()
    # This test's own pid with a wrong start time: a recycled pid must never be signalled.
    import os

    paths.pid("ghost").write_text(json.dumps({"pid": os.getpid(), "start_ticks": 1, "argv": []}))
    assert process.read_pid(paths, "ghost") is None
    assert not paths.pid("ghost").exists()


def test_sigterm_ignored_means_sigkill(tmp_path: Path) -> None:
    paths = StatePaths.at(tmp_path)
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    rec = process.start_detached(paths, "stubborn", [sys.executable, "-c", code])
    import time

    deadline = time.monotonic() + 10
    while "ready" not in paths.log("stubborn").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.stop(paths, "stubborn", timeout=0.5)
    assert not process.pid_alive(rec.pid, rec.start_ticks)
