"""The generated rules in a real Prometheus, and every panel query against it.

A small exporter serves every catalogue metric (labels as the workers and ingestors set
them) with counters that keep growing; Prometheus (Debian's binary) scrapes it as the
worker job every second and evaluates the generated rule files every second.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from dashboards import generate, grafana, rules
from dashboards.config import CONFIG
from deploy.stack.ports import free_port
from processors.catalogue import CATALOGUE

pytestmark = pytest.mark.integration

NS = CONFIG.live_namespace
# Label values per label name; every label set is the product of its labels' values.
VALUES = {
    "namespace": [NS],
    "brand": ["acme", "rival"],
    "platform": ["bluesky", "mastodon"],
    "campaign": ["bf2026"],
    "site": ["acme.com"],
    "network": ["x", "reddit"],
    "source": ["bluesky", "mastodon"],
    "kind": ["post", "reaction"],
    "reason": ["invalid_json"],
    "window": ["1m"],
    "topic": [f"{NS}.events"],
    "partition": ["0", "1"],
    "stage": ["window"],
    "alertname": ["EngagementDrop"],
    "sentiment": ["positive", "negative"],
    "status": ["2xx"],
}


def _label_sets(labels: tuple[str, ...]) -> list[dict[str, str]]:
    sets: list[dict[str, str]] = [{}]
    for name in labels:
        sets = [{**s, name: v} for s in sets for v in VALUES[name]]
    return sets


class Exporter:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.metrics = [(m, m.create(self.registry)) for m in CATALOGUE]
        self.port = free_port()
        self.stop = threading.Event()
        self.tick()
        start_http_server(self.port, "127.0.0.1", registry=self.registry)
        threading.Thread(target=self.run, daemon=True).start()

    def tick(self) -> None:
        now = time.time()
        for m, obj in self.metrics:
            for i, labels in enumerate(_label_sets(m.labels)):
                child: Any = obj.labels(**labels) if labels else obj
                if isinstance(obj, Counter):
                    child.inc(1 + i)  # different rates per label set
                elif isinstance(obj, Histogram):
                    child.observe(0.01 * (1 + i))
                elif isinstance(obj, Gauge):
                    child.set(now - 2 if m.name.endswith("_timestamp_seconds") else 1 + i)

    def run(self) -> None:
        while not self.stop.wait(0.25):
            self.tick()


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed (Debian package prometheus)")
    exporter = Exporter()
    tmp: Path = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(generate.RULES_FILE), str(generate.ALERTS_FILE)],
        "scrape_configs": [
            {
                "job_name": CONFIG.worker_job,
                "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}],
            }
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # ready, and rates over a few scrapes exist
            try:
                q = urllib.parse.quote("brand_platform:ripple_smm_mentions:rate5m")
                if _get(f"{url}/api/v1/query?query={q}")["data"]["result"]:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("Prometheus never recorded a rate")
            time.sleep(0.5)
        time.sleep(3)  # every group evaluated a few times
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        exporter.stop.set()


def _query(url: str, expr: str) -> dict[str, Any]:
    data: dict[str, Any] = _get(f"{url}/api/v1/query?query={urllib.parse.quote(expr)}")
    return data


def test_every_rule_loads_and_evaluates_without_error(prometheus: str) -> None:
    groups = _get(f"{prometheus}/api/v1/rules")["data"]["groups"]
    names = {g["name"] for g in groups}
    assert names == {g.name for g in rules.groups()} | {
        "ripple-pipeline-alerts",
        "ripple-table-alerts",
    }
    unhealthy = [
        (r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"
    ]
    assert not unhealthy


def test_every_panel_query_runs_and_returns_data(prometheus: str) -> None:
    values = {**grafana.DEFAULT_VALUES, "namespace": NS}
    targets = grafana.panel_targets()
    # The drop baselines need 2h15m (or a week) of history, which a fresh Prometheus lacks.
    assert 0 < sum(t.needs_history for t in targets) < 10
    empty, failed = [], []
    for t in targets:
        reply = _query(prometheus, t.promql(values))
        if reply["status"] != "success":
            failed.append((t, reply.get("error")))
        elif not reply["data"]["result"] and not t.needs_history:
            empty.append(t)
    assert not failed
    assert not empty


def test_recorded_ratios_equal_quotients_of_the_raw_sums(prometheus: str) -> None:
    # Share of voice of all brands on one platform sums to 1 (ratio of sums, not averages).
    reply = _query(
        prometheus, "sum by (platform) (brand_platform:ripple_smm_share_of_voice:ratio_rate5m)"
    )
    values = [float(r["value"][1]) for r in reply["data"]["result"]]
    assert values and all(abs(v - 1) < 1e-9 for v in values)


def test_live_worker_raises_no_pipeline_alert(prometheus: str) -> None:
    firing = _get(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
    names = {a["labels"]["alertname"] for a in firing}
    assert not names & {"WorkerDown", "IngestStalled", "EngagementDrop", "SocialReferralDrop"}
