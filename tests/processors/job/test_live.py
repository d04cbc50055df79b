"""A live worker on the real broker: what arrives shows on /metrics on time, and a record
from the far future neither freezes the worker nor moves its watermark."""

from __future__ import annotations

import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from deploy.commands.replay import free_port
from ingest.config import load_config
from processors.job.topology import delete_namespace, ensure_topics
from tests.processors.job.test_replay import _stop, _worker

pytestmark = pytest.mark.integration


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _pageview(i: int, ts: str | None = None) -> bytes:
    now = _now()
    return orjson.dumps(
        {
            "v": 1,
            "id": f"web:live-{i}",
            "kind": "pageview",
            "platform": "web",
            "ts": ts or now,
            "ingested_at": now,
            "site": "quiet.example",
            "url": "https://quiet.example/",
            "session": f"s-{i}",
        }  # fmt: skip
    )


def _scrape(port: int, name: str, **labels: str) -> float | None:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def _healthy(port: int) -> bool:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).status == 200
    except OSError:
        return False


def _wait(cond, timeout: float) -> float:  # type: ignore[no-untyped-def]
    """Seconds until ``cond()`` held (polled every 20 ms); fails after ``timeout``."""
    started = time.monotonic()
    while not cond():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.02)
    return time.monotonic() - started


def test_one_event_then_silence_is_visible_and_a_far_future_post_changes_nothing(
    stack, namespace: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "ripple.toml"
    cfg.write_text(stack.config_path.read_text() + '\n[[sites]]\nname = "quiet.example"\n')
    config = load_config(cfg)
    delete_namespace(stack.bootstrap, namespace)
    ensure_topics(stack.bootstrap, namespace, config.kafka.partitions, config.kafka.partitions)
    port = free_port()
    worker = _worker(cfg, namespace, tmp_path / "w", tmp_path / "worker.log", port)
    events = f"{namespace}.events"
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    pv = "ripple_smo_pageviews_total"
    try:
        _wait(lambda: _healthy(port), 120)
        # Warm up: the first event waits for partition assignment; then one event, silence.
        producer.send(events, _pageview(0)).get(30)
        _wait(lambda: (_scrape(port, pv, namespace=namespace) or 0) >= 1, 120)
        producer.send(events, _pageview(1)).get(30)
        took = _wait(lambda: (_scrape(port, pv, namespace=namespace) or 0) >= 2, 10)
        assert took < 3.0, f"one pageview, then silence: visible after {took:.2f} s"
        wm_name = "ripple_processor_watermark_timestamp_seconds"
        _wait(lambda: _scrape(port, wm_name, namespace=namespace) is not None, 10)
        watermark = _scrape(port, wm_name, namespace=namespace)
        # A post dated 2999 straight into <ns>.events (its ingested_at is now: future_ts).
        far = orjson.loads(_pageview(2, ts="2999-01-01T00:00:00Z"))
        producer.send(events, orjson.dumps(far)).get(30)
        for i in range(3, 8):
            producer.send(events, _pageview(i)).get(30)
        _wait(lambda: (_scrape(port, pv, namespace=namespace) or 0) >= 7, 10)
        assert _healthy(port)
        assert _scrape(port, wm_name, namespace=namespace) < watermark + 3600  # type: ignore[operator]
        dead = _scrape(port, "ripple_processor_dead_letters_total", namespace=namespace,
                       reason="future_ts")  # fmt: skip
        assert dead == 1
    finally:
        producer.close()
        _stop(worker)
