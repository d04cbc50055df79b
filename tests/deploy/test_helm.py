"""The Helm chart (deploy/helm/ripple): lint, render, and validate every object offline.

helm, kubeconform and controller-gen are built from the Go module proxy into the tool cache
on first use (deploy/stack/gotools.py); the schemas are made from the Python ``kubernetes``
client's models and prometheus-operator's Go types (deploy/stack/kubeschemas.py).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.generate import ALERTS_FILE, GRAFANA_DIR, PROVISIONING, REPO_ROOT, RULES_FILE

CHART = REPO_ROOT / "deploy" / "helm" / "ripple"
FULL_VALUES = CHART / "ci" / "full-values.yaml"

if shutil.which("go") is None:
    pytest.skip(
        "Go is not installed: helm and kubeconform are built with it", allow_module_level=True
    )


@pytest.fixture(scope="session")
def helm() -> Path:
    from deploy.stack import gotools

    return gotools.ensure(gotools.HELM)


@pytest.fixture(scope="session")
def schemas() -> Path:
    from deploy.stack import kubeschemas

    return kubeschemas.schema_dir()


def _run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120)


def render(helm: Path, chart: Path = CHART, *values: Path) -> str:
    args = [a for v in values for a in ("-f", v)]
    res = _run(helm, "template", "rel", chart, "--namespace", "ripple", *args)
    assert res.returncode == 0, res.stderr
    return res.stdout


def validate(manifests: str, schemas: Path) -> subprocess.CompletedProcess[str]:
    from deploy.stack import kubeschemas

    assert kubeschemas.schema_dir() == schemas
    return kubeschemas.kubeconform(stdin=manifests)


def objects(manifests: str) -> dict[tuple[str, str], dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(manifests) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


@pytest.mark.parametrize("values", [(), (FULL_VALUES,)], ids=["defaults", "full"])
def test_chart_lints_and_every_rendered_object_is_valid(
    helm: Path, schemas: Path, values: tuple[Path, ...]
) -> None:
    lint = _run(helm, "lint", "--strict", CHART, *[a for v in values for a in ("-f", v)])
    assert lint.returncode == 0, lint.stdout + lint.stderr
    manifests = render(helm, CHART, *values)
    res = validate(manifests, schemas)
    assert res.returncode == 0, res.stdout + res.stderr
    # Every object was checked against a schema: none skipped for want of one.
    assert "Skipped: 0" in res.stdout and "Errors: 0" in res.stdout, res.stdout
    assert f"{len(objects(manifests))} resources found" in res.stdout


def test_full_values_render_what_they_enable(helm: Path) -> None:
    objs = objects(render(helm, CHART, FULL_VALUES))
    kinds = sorted(k for k, _ in objs)
    assert kinds.count("Ingress") == 1 and kinds.count("Secret") == 1
    # One Deployment per enabled source (reddit is disabled), plus the collector.
    assert {n for k, n in objs if k == "Deployment"} == {
        "rel-ripple-collector",
        "rel-ripple-ingest-bluesky",
        "rel-ripple-ingest-x",
    }
    workers = objs[("StatefulSet", "rel-ripple-worker")]
    assert workers["spec"]["replicas"] == 4
    claim = workers["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    mounts = workers["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": claim["metadata"]["name"], "mountPath": "/var/lib/ripple"} in mounts
    # The Kafka credentials reach every Ripple container (workers, collector, sources).
    for (kind, name), obj in objs.items():
        if kind in ("Deployment", "StatefulSet"):
            pod = obj["spec"]["template"]["spec"]
            assert {
                "name": "kafka-credentials",
                "secret": {"secretName": "ripple-kafka", "defaultMode": 0o400},
            } in pod["volumes"], name
            assert any(
                m["mountPath"] == "/etc/ripple-kafka" for m in pod["containers"][0]["volumeMounts"]
            ), name
    assert objs[("Secret", "rel-ripple-secrets")]["stringData"] == {
        "X_BEARER_TOKEN": "not-a-real-token"
    }
    # The dashboards' data source (generated name and uid), at the URL of the values.
    ds = yaml.safe_load(
        objs[("ConfigMap", "rel-ripple-datasource")]["data"]["ripple-datasource.yaml"]
    )
    generated = yaml.safe_load(
        (REPO_ROOT / PROVISIONING / "datasources" / "ripple.yaml").read_text()
    )
    assert ds["datasources"] == [
        {**generated["datasources"][0], "url": "http://kube-prometheus-stack-prometheus:9090"}
    ]
    # The TOML lands verbatim in the ConfigMap every pod mounts.
    toml = objs[("ConfigMap", "rel-ripple-config")]["data"]["ripple.toml"]
    assert toml == yaml.safe_load(FULL_VALUES.read_text())["config"]


def test_existing_secret_is_used_and_none_is_created(helm: Path, tmp_path: Path) -> None:
    values = tmp_path / "v.yaml"
    values.write_text("secrets: {existingSecret: my-creds, create: true}\n")
    objs = objects(render(helm, CHART, values))
    assert not [n for k, n in objs if k == "Secret"]
    pod = objs[("StatefulSet", "rel-ripple-worker")]["spec"]["template"]["spec"]
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "my-creds"}}]


def test_monitoring_objects_are_the_generated_rules_and_dashboards(helm: Path) -> None:
    objs = objects(render(helm))
    for name, path in (("prometheus-rules", RULES_FILE), ("prometheus-alerts", ALERTS_FILE)):
        rule = objs[("PrometheusRule", f"rel-ripple-{name}")]
        assert rule["spec"]["groups"] == yaml.safe_load(path.read_text())["groups"]
    boards = {n: d for (k, n), d in objs.items() if k == "ConfigMap" and "dashboard" in n}
    assert {n.removeprefix("rel-ripple-dashboard-") for n in boards} == {
        p.stem for p in GRAFANA_DIR.glob("*.json")
    }
    for name, cm in boards.items():
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        (file,) = cm["data"]
        assert cm["data"][file] == (GRAFANA_DIR / file).read_text().rstrip("\n"), name


@pytest.mark.parametrize(
    ("template", "field", "typo"),
    [
        ("workers.yaml", "  replicas: {{", "  replcas: {{"),  # a core kind (StatefulSet)
        ("monitoring.yaml", "honorLabels:", "honourLabels:"),  # a CRD (ServiceMonitor)
    ],
)
def test_a_field_name_typo_in_a_template_fails_validation(
    helm: Path, schemas: Path, tmp_path: Path, template: str, field: str, typo: str
) -> None:
    broken = tmp_path / "ripple"
    shutil.copytree(CHART, broken)
    path = broken / "templates" / template
    text = path.read_text()
    assert field in text
    path.write_text(text.replace(field, typo, 1))
    # helm itself renders the typo happily: only the schema check catches it.
    res = validate(render(helm, broken), schemas)
    assert res.returncode != 0
    bad = typo.strip().split(":")[0]
    assert f"'{bad}' not allowed" in res.stdout, res.stdout


@pytest.mark.parametrize("values", [(), (FULL_VALUES,)], ids=["defaults", "full"])
def test_every_container_gets_a_config_that_ripple_loads(
    helm: Path, tmp_path: Path, values: tuple[Path, ...]
) -> None:
    from ingest.config import load_config

    objs = objects(render(helm, CHART, *values))
    toml = tmp_path / "ripple.toml"
    toml.write_text(objs[("ConfigMap", "rel-ripple-config")]["data"]["ripple.toml"])
    # The full values mount Kafka's CA and the password file here: stand-ins for the Secret.
    creds = tmp_path / "ripple-kafka"
    creds.mkdir()
    (creds / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (creds / "password").write_text("not-a-real-password\n")
    loaded = 0
    for (kind, name), obj in objs.items():
        if kind not in ("Deployment", "StatefulSet"):
            continue
        (container,) = obj["spec"]["template"]["spec"]["containers"]
        env = {
            e["name"]: e["value"].replace("/etc/ripple-kafka", str(creds)) for e in container["env"]
        }
        assert env.pop("RIPPLE_CONFIG") == "/etc/ripple/ripple.toml"
        # Every RIPPLE_<SECTION>_<KEY> the chart sets is a known setting of the right type.
        cfg = load_config(toml, env=env)
        assert cfg.kafka.bootstrap == env["RIPPLE_KAFKA_BOOTSTRAP"], name
        assert cfg.stack.state_dir == "/var/lib/ripple"
        loaded += 1
    assert loaded == (4 if values else 2)  # workers, collector (+ bluesky and x)
