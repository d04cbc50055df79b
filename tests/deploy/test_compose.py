"""The compose stack (deploy/compose): the compose client validates it offline, and what it
wires together exists (mounted files, the generated rules and dashboards, one service and
one scrape target per source, one Dockerfile for every Ripple process)."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.generate import COMPOSE_DATASOURCES, COMPOSE_PROMETHEUS_URL, REPO_ROOT
from deploy.commands.ingest import SOURCES
from deploy.stack.services import RIPPLE_JOBS

COMPOSE_DIR = REPO_ROOT / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
RIPPLE_COMMANDS = {"worker", "ingest"}


def compose_client() -> list[str] | None:
    """``docker compose`` (the v2 plugin) or Debian's ``docker-compose``; config is client-side."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.fixture(scope="module")
def client() -> list[str]:
    found = compose_client()
    if found is None:
        pytest.skip("no compose client (`docker compose` or Debian's docker-compose) installed")
    return found


def config(client: list[str], file: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # No engine is needed: `config` parses, validates and interpolates on the client.
    return subprocess.run(
        [*client, "-f", str(file), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), **env},
    )


@pytest.fixture(scope="module")
def resolved(client: list[str]) -> dict[str, Any]:
    res = config(client, COMPOSE, RIPPLE_WORKERS="3")
    assert res.returncode == 0, res.stderr
    data: dict[str, Any] = yaml.safe_load(res.stdout)
    return data


def _ripple_services(resolved: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: s
        for name, s in resolved["services"].items()
        if s.get("command") and s["command"][0] in RIPPLE_COMMANDS
    }


def test_compose_file_is_valid_and_every_part_is_there(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert {"kafka", "prometheus", "alertmanager", "grafana", "worker", "collector"} <= set(
        services
    )
    # Images are pinned; Kafka is the official image, in KRaft mode.
    for name, s in services.items():
        if "image" in s and "build" not in s:
            repo, _, tag = s["image"].rpartition(":")
            assert repo and tag and tag != "latest", (name, s["image"])
    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["worker"]["deploy"]["replicas"] == 3  # RIPPLE_WORKERS


def test_every_ripple_process_is_built_from_the_one_dockerfile(resolved: dict[str, Any]) -> None:
    ripple = _ripple_services(resolved)
    assert len(ripple) >= 2 + len(SOURCES) - 1
    builds = {
        (s["build"]["context"], s["build"]["dockerfile"], s["image"]) for s in ripple.values()
    }
    assert len(builds) == 1, builds
    ((context, dockerfile, _),) = builds
    assert Path(context).resolve() == REPO_ROOT
    assert (REPO_ROOT / dockerfile).resolve() == DOCKERFILE
    text = DOCKERFILE.read_text()
    assert "FROM python:3.11-slim" in text
    # The image holds every package that pyproject.toml installs.
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.rstrip("*")
        assert f"COPY {package} {package}" in text, package


def test_one_service_and_one_scrape_target_per_source(resolved: dict[str, Any]) -> None:
    sources = [name for name in SOURCES if name != "web"]
    for source in sources:
        s = resolved["services"][f"ingest-{source}"]
        assert s["command"] == ["ingest", source]
        assert s["profiles"] == [source]  # started only when enabled
    prom = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert set(RIPPLE_JOBS) <= set(jobs)
    names = jobs["ripple-ingest"]["dns_sd_configs"][0]["names"]
    assert sorted(names) == sorted(f"ingest-{s}" for s in sources)
    assert jobs["ripple-worker"]["dns_sd_configs"][0]["names"] == ["worker"]


def test_mounted_files_exist_and_carry_the_generated_outputs(resolved: dict[str, Any]) -> None:
    mounts: dict[str, str] = {}
    for name, s in resolved["services"].items():
        for v in s.get("volumes", []):
            spec = v if isinstance(v, str) else f"{v.get('source', '')}:{v['target']}"
            source, bound, target = spec.partition(":")
            if bound and source.startswith("/"):  # bind mounts, not named or anonymous volumes
                assert Path(source).exists(), (name, source)
                mounts[f"{name}:{target.split(':')[0]}"] = source
    assert Path(mounts["prometheus:/etc/prometheus/rules"]) == REPO_ROOT / "dashboards" / "out"
    grafana = Path(mounts["grafana:/ripple/dashboards/out/grafana"])
    assert sorted(p.name for p in grafana.glob("*.json")) == [
        "pipeline.json",
        "smm.json",
        "smo.json",
    ]
    datasources = Path(mounts["grafana:/etc/grafana/provisioning/datasources"])
    assert datasources == (REPO_ROOT / COMPOSE_DATASOURCES).parent
    ds = yaml.safe_load((REPO_ROOT / COMPOSE_DATASOURCES).read_text())["datasources"][0]
    assert ds["url"] == COMPOSE_PROMETHEUS_URL
    assert "9090" in str(resolved["services"]["prometheus"]["ports"])
    assert Path(mounts["alertmanager:/etc/alertmanager/alertmanager.yml"]) == (
        REPO_ROOT / "deploy" / "alertmanager.yml"
    )


def test_a_field_name_typo_fails_the_compose_check(client: list[str], tmp_path: Path) -> None:
    broken = tmp_path / "deploy" / "compose"
    shutil.copytree(COMPOSE_DIR, broken)
    text = (broken / "compose.yaml").read_text()
    (broken / "compose.yaml").write_text(
        text.replace("    restart: unless-stopped", "    restrat: unless-stopped", 1)
    )
    res = config(client, broken / "compose.yaml")
    assert res.returncode != 0
    assert "restrat" in res.stderr, res.stderr
