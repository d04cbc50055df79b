"""The local stack against real services: Kafka (kafka-python), Prometheus, Alertmanager."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


def _eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.5)


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[Any]:
    """Every committed record of ``topic`` from the start (stops at ``expected`` or timeout).

    Partitions are assigned by hand, not through a consumer group: a group joined before
    the client has the new topic's metadata can be assigned nothing and wait for the next
    metadata refresh, which made this helper flaky on a loaded machine."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        parts: set[int] = set()
        while not parts and time.monotonic() < deadline:
            parts = consumer.partitions_for_topic(topic) or set()
            if not parts:
                time.sleep(0.2)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        # A little longer: more than expected must show up as a failure, not go unseen.
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    finally:
        consumer.close()
    return records


def test_produce_and_consume(stack) -> None:
    from kafka import KafkaProducer

    topic = stack.unique_topic(partitions=3)
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    for i in range(100):
        producer.send(topic, key=str(i % 7).encode(), value=f"v{i}".encode())
    producer.flush()
    producer.close()
    records = consume_all(stack.bootstrap, topic, 100)
    assert sorted(r.value for r in records) == sorted(f"v{i}".encode() for i in range(100))
    by_key: dict[bytes, set[int]] = {}
    for r in records:
        by_key.setdefault(r.key, set()).add(r.partition)
    assert all(len(parts) == 1 for parts in by_key.values())  # one key, one partition


def test_namespace_topics_auto_create_with_configured_partitions(stack) -> None:
    from kafka import KafkaProducer

    topic = f"auto.{uuid.uuid4().hex[:8]}"  # never created explicitly
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    producer.send(topic, b"x").get(timeout=30)
    assert len(producer.partitions_for(topic)) == 3  # kafka.partitions of the fixture's config
    producer.close()


def test_transactional_producer_commits_and_aborts(stack) -> None:
    from kafka import KafkaProducer

    topic = stack.unique_topic(partitions=2)
    producer = KafkaProducer(
        bootstrap_servers=stack.bootstrap, transactional_id=f"tx-{uuid.uuid4().hex[:8]}"
    )
    producer.init_transactions()
    producer.begin_transaction()
    for i in range(10):
        producer.send(topic, f"committed-{i}".encode())
    producer.commit_transaction()
    producer.begin_transaction()
    for i in range(5):
        producer.send(topic, f"aborted-{i}".encode())
    producer.flush()
    producer.abort_transaction()
    producer.close()

    values = sorted(r.value for r in consume_all(stack.bootstrap, topic, 10))
    assert values == sorted(f"committed-{i}".encode() for i in range(10))


def test_compacted_topic_keeps_latest_value_per_key(stack) -> None:
    from kafka import KafkaProducer

    topic = stack.unique_topic(
        "compact",
        partitions=1,
        config={
            "cleanup.policy": "compact",
            "segment.ms": "100",  # roll segments quickly so the cleaner may compact them
            "min.cleanable.dirty.ratio": "0.01",
            "min.compaction.lag.ms": "0",
        },
    )
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    for round_ in ("old", "mid", "new"):
        for k in range(10):
            producer.send(topic, key=f"k{k}".encode(), value=round_.encode())
        producer.flush()
        time.sleep(0.3)
    producer.send(topic, key=b"roll", value=b"1").get(timeout=30)  # closes the last segment
    time.sleep(0.3)
    producer.send(topic, key=b"roll", value=b"2").get(timeout=30)
    producer.close()

    def compacted() -> bool:
        records = consume_all(stack.bootstrap, topic, 10**6, timeout=2)
        keyed = [r for r in records if r.key != b"roll"]
        return sorted((r.key, r.value) for r in keyed) == sorted(
            (f"k{k}".encode(), b"new") for k in range(10)
        )

    _eventually(compacted, 90, "log cleaner removes superseded values")


def test_prometheus_scrapes_its_targets(stack) -> None:
    def all_up() -> bool:
        targets = _get_json(stack.prometheus_url + "/api/v1/targets")["data"]["activeTargets"]
        jobs = {t["labels"]["job"]: t["health"] for t in targets}
        return jobs.get("prometheus") == "up" and jobs.get("alertmanager") == "up"

    _eventually(all_up, 30, "Prometheus scrapes itself and Alertmanager")
    # The metrics are queryable, and alerts go to the Alertmanager beside it.
    up = _get_json(stack.prometheus_url + "/api/v1/query?query=up")["data"]["result"]
    assert {r["metric"]["job"] for r in up if r["value"][1] == "1"} >= {
        "prometheus",
        "alertmanager",
    }
    ams = _get_json(stack.prometheus_url + "/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
    assert [a["url"] for a in ams] == [stack.alertmanager_url + "/api/v2/alerts"]


def test_prometheus_loads_the_generated_rule_files(stack) -> None:
    import glob

    import yaml

    from deploy.stack.prometheus import RULES_GLOB

    expected = sorted(
        g["name"]
        for path in glob.glob(RULES_GLOB)
        for g in (yaml.safe_load(Path(path).read_text()) or {}).get("groups", [])
    )
    groups = _get_json(stack.prometheus_url + "/api/v1/rules")["data"]["groups"]
    assert sorted(g["name"] for g in groups) == expected


def test_alertmanager_answers_and_accepts_alerts(stack) -> None:
    status = _get_json(stack.alertmanager_url + "/api/v2/status")
    assert status["cluster"]["status"] == "disabled"  # a single instance, no gossip port
    assert "route" in status["config"]["original"]

    alert = [{"labels": {"alertname": "RippleStackTest", "severity": "info"}}]
    req = urllib.request.Request(
        stack.alertmanager_url + "/api/v2/alerts",
        data=json.dumps(alert).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200
    names = [a["labels"]["alertname"] for a in _get_json(stack.alertmanager_url + "/api/v2/alerts")]
    assert "RippleStackTest" in names


def test_broker_restart_loses_no_acknowledged_record(stack) -> None:
    """Produce continuously while the broker stops and starts; every acked record survives."""
    from kafka import KafkaProducer

    topic = stack.unique_topic("restart", partitions=3)
    producer = KafkaProducer(
        bootstrap_servers=stack.bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=5000,
        delivery_timeout_ms=120000,
        reconnect_backoff_max_ms=500,
    )
    acked: list[bytes] = []
    failed: list[bytes] = []
    stop = threading.Event()

    def produce() -> None:
        i = 0
        while not stop.is_set():
            value = f"r{i}".encode()
            fut = producer.send(topic, key=str(i % 11).encode(), value=value)
            fut.add_callback(lambda _md, v=value: acked.append(v))
            fut.add_errback(lambda _exc, v=value: failed.append(v))
            i += 1
            time.sleep(0.002)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    _eventually(lambda: len(acked) > 200, 30, "records acknowledged before the restart")
    before = len(acked)
    stack.stop_kafka()
    stack.start_kafka()
    _eventually(lambda: len(acked) > before + 200, 60, "records acknowledged after the restart")
    stop.set()
    thread.join(10)
    producer.flush(timeout=60)
    producer.close()

    values = {r.value for r in consume_all(stack.bootstrap, topic, len(acked), timeout=60)}
    missing = [v for v in acked if v not in values]
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:5]}"
    assert len(acked) > before + 200


def test_up_creates_the_namespace_from_the_one_topic_plan(stack) -> None:
    from kafka.admin import KafkaAdminClient

    from ingest.config import load_config
    from processors.job.topology import topic_plan
    from tests.kafka_records import topic_config

    k = load_config(stack.config_path).kafka
    plan = topic_plan(k.namespace, k.partitions)
    admin = KafkaAdminClient(bootstrap_servers=stack.bootstrap)
    try:
        described = {t["name"]: t for t in admin.describe_topics(list(plan))}
    finally:
        admin.close()
    for name, (partitions, config) in plan.items():
        assert len(described[name]["partitions"]) == partitions, name
        got = topic_config(stack.bootstrap, name)
        assert {key: got[key] for key in config} == config, name
    assert plan[f"{k.namespace}.results"][1] == {"cleanup.policy": "compact"}
