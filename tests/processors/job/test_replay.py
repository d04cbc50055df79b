"""The processors end to end on the real broker: replay results equal an independent
reference computation of METRICS.md (tests/reference), with one worker, two workers,
and a worker killed with SIGKILL in the middle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from deploy.commands.replay import free_port
from ingest.config import load_config
from ingest.events import InvalidEvent, decode_event
from ingest.topics import Topics
from processors.history.replay import collect_results, produce_lines, request_flush
from processors.job.topology import delete_namespace, ensure_topics
from tests.processors.replay_helpers import write_dataset
from tests.reference.dataset import generate
from tests.reference.oracle import compute_results

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def dataset(stack, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The reference dataset, its config (on the test stack) and the oracle's rows."""
    config_toml, lines = generate(seed=10)
    d = tmp_path_factory.mktemp("replay")
    cfg, events = write_dataset(stack.config_path, config_toml, lines, d)
    expected = compute_results(lines, load_config(cfg))
    assert len(expected) > 10_000 and any(r["metric"] == "alert" for r in expected)
    return cfg, events, lines, expected


def run_replay(cfg: Path, events: Path, namespace: str, out: Path, *extra: str) -> None:
    cmd = [sys.executable, "-m", "deploy.cli", "replay", "--config", str(cfg), "--input", str(events),
           "--namespace", namespace, "--out", str(out), "--timeout", "300", *extra]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


def assert_same_rows(got: list[dict], expected: list[dict]) -> None:
    """Equal, or a short account of what differs (pytest's diff of 12k rows takes hours)."""
    if got == expected:
        return
    g = {
        json.dumps([r["metric"], r["window"], r["window_start"], r["labels"]], sort_keys=True): r
        for r in got
    }
    e = {
        json.dumps([r["metric"], r["window"], r["window_start"], r["labels"]], sort_keys=True): r
        for r in expected
    }
    missing = [k for k in e if k not in g]
    extra = [k for k in g if k not in e]
    wrong = [k for k in e if k in g and g[k] != e[k]]
    sample = [("missing", k) for k in missing[:5]] + [("extra", k) for k in extra[:5]]
    sample += [("value", k, e[k]["value"], g[k]["value"]) for k in wrong[:5]]
    raise AssertionError(
        f"{len(missing)} rows missing, {len(extra)} extra, {len(wrong)} wrong of {len(expected)}: {sample}"
    )


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_replay_equals_reference_and_is_byte_identical(
    dataset, namespace: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cfg, events, lines, expected = dataset
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    run_replay(cfg, events, namespace, first)
    assert_same_rows(rows(first), expected)
    run_replay(cfg, events, namespace, second)
    assert first.read_bytes() == second.read_bytes()


def test_invalid_lines_reach_the_dead_letter_topic(
    dataset, stack, namespace: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cfg, events, lines, _ = dataset
    run_replay(cfg, events, namespace, tmp_path / "out.jsonl")
    invalid = []
    for line in lines:
        try:
            decode_event(line, load_config(cfg).kafka.max_event_bytes)
        except InvalidEvent:
            invalid.append(line)
    consumer = KafkaConsumer(
        bootstrap_servers=stack.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000
    )
    consumer.assign([TopicPartition(Topics(namespace).dlq, 0)])
    dead = list(consumer)
    consumer.close()
    assert sorted(r.value for r in dead) == sorted(invalid)
    assert all(dict(r.headers).get("ripple-reason") for r in dead)


def test_two_workers_give_the_same_results_as_one(dataset, namespace: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, events, _, expected = dataset
    out = tmp_path / "two.jsonl"
    run_replay(cfg, events, namespace, out, "--workers", "2")
    assert_same_rows(rows(out), expected)


def _worker(
    cfg: Path,
    namespace: str,
    state: Path,
    log: Path,
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "deploy.cli", "worker", "--config", str(cfg), "--namespace", namespace,
           "--web-port", str(port or free_port()), "--state-dir", str(state)]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})})  # fmt: skip


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL: a worker asked to stop while its group waits for a killed
    member to time out (a minute) finishes the rebalance first; the test is done then."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)


def _result_count(bootstrap: str, namespace: str) -> int:
    c = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tp = TopicPartition(Topics(namespace).results, 0)
        return int(c.end_offsets([tp])[tp])
    finally:
        c.close()


def test_worker_killed_mid_replay_loses_nothing_and_counts_nothing_twice(
    dataset,
    stack,
    namespace: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    cfg, _, lines, expected = dataset
    config = load_config(cfg)
    delete_namespace(stack.bootstrap, namespace)
    ensure_topics(stack.bootstrap, namespace, config.kafka.partitions, 1)
    half = len(lines) // 2
    log = tmp_path / "workers.log"
    # Two workers: the one that runs the rollup is killed, so its journal is rebuilt by the
    # survivor, which also takes over its resolve partitions. The rollup compacts its journal
    # at every final window, so that rebuild reads a compacted log.
    compacting = {"RIPPLE_ROLLUP_COMPACT_AT": "1"}
    logs = {name: tmp_path / f"{name}.log" for name in "ab"}
    workers = {name: _worker(cfg, namespace, tmp_path / name, logs[name], env=compacting)
               for name in "ab"}  # fmt: skip
    a, b = workers["a"], workers["b"]
    try:
        produce_lines(stack.bootstrap, namespace, lines[:half])
        deadline = time.monotonic() + 120
        while _result_count(stack.bootstrap, namespace) == 0:
            assert time.monotonic() < deadline, "no results before the kill"
            time.sleep(0.05)
        victim = workers[_rollup_owner(logs)]
        os.kill(victim.pid, signal.SIGKILL)  # in the middle: windows are closing, batches in flight
        victim.wait()
        before = {f: f.stat().st_size for f in (*logs.values(), log) if f.exists()}
        produce_lines(stack.bootstrap, namespace, lines[half:])
        # And a fresh worker with an empty state dir: it recovers from the changelogs.
        c = _worker(cfg, namespace, tmp_path / "c", log, env=compacting)
        try:
            request_flush(stack.bootstrap, namespace)
            got = collect_results(
                stack.bootstrap,
                namespace,
                timeout=300,
                alive=lambda: any(w.poll() is None for w in (a, b, c)),
            )
        finally:
            _stop(c)
    finally:
        for p in (a, b):
            if p.poll() is None:
                _stop(p)
    after_kill = [f.read_bytes()[before.get(f, 0) :] for f in (*logs.values(), log)]
    assert any(b"rollup: rebuilt from" in text for text in after_kill)  # another took it over
    assert_same_rows(got, expected)


def _rollup_owner(logs: dict[str, Path]) -> str:
    """The worker that last rebuilt the rollup (its log lines start with their time)."""
    last = {}
    for name, f in logs.items():
        lines = [x for x in f.read_text().splitlines() if "rollup: rebuilt from" in x]
        if lines:
            last[name] = lines[-1][:25]
    assert last, "no worker runs the rollup"
    return max(last, key=lambda n: last[n])


def test_input_offsets_committed_past_what_was_applied_are_read_back(
    dataset, stack, namespace: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The faust group's committed offsets start past records no agent ever applied (what a
    failover left behind in CI): the agents notice from their own next-offset state, read
    the skipped records from Kafka, and the results are still exact."""
    from kafka.structs import OffsetAndMetadata

    cfg, _, lines, expected = dataset
    config = load_config(cfg)
    delete_namespace(stack.bootstrap, namespace)
    ensure_topics(stack.bootstrap, namespace, config.kafka.partitions, 1)
    topics = Topics(namespace)
    skipped = {TopicPartition(topics.internal("batches"), p): OffsetAndMetadata(3, "", -1)
               for p in range(config.kafka.partitions)}  # fmt: skip
    skipped[TopicPartition(topics.internal("partials"), 0)] = OffsetAndMetadata(5, "", -1)
    group = KafkaConsumer(bootstrap_servers=stack.bootstrap, group_id=f"ripple-{namespace}")
    group.commit(skipped)
    group.close()
    log = tmp_path / "worker.log"
    worker = _worker(cfg, namespace, tmp_path / "w", log)
    try:
        produce_lines(stack.bootstrap, namespace, lines)
        request_flush(stack.bootstrap, namespace)
        got = collect_results(
            stack.bootstrap, namespace, timeout=300, alive=lambda: worker.poll() is None
        )
    finally:
        _stop(worker)
    assert_same_rows(got, expected)
    assert "resolve partition 0: resumed at 3, expected 0" in log.read_text()
    assert "rollup: resumed at 5, expected 0" in log.read_text()


def test_worker_counters_equal_the_results_1m_totals(
    dataset, stack, namespace: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Prometheus gets raw counters that advance with each 1m window as it fills: once every
    window is final, each counter equals the sum of its 1m rows in the results."""
    from prometheus_client.parser import text_string_to_metric_families

    from processors.catalogue import PROC_WINDOWS_CLOSED, RESULT_COUNTERS

    cfg, _, lines, expected = dataset
    config = load_config(cfg)
    delete_namespace(stack.bootstrap, namespace)
    ensure_topics(stack.bootstrap, namespace, config.kafka.partitions, 1)
    port = free_port()
    worker = _worker(cfg, namespace, tmp_path / "w", tmp_path / "worker.log", port)
    try:
        produce_lines(stack.bootstrap, namespace, lines)
        request_flush(stack.bootstrap, namespace)
        collect_results(
            stack.bootstrap, namespace, timeout=300, alive=lambda: worker.poll() is None
        )
        import urllib.request

        text = (
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        )
    finally:
        _stop(worker)
    scraped: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("namespace") == namespace:
                labels = frozenset((k, v) for k, v in sample.labels.items() if k != "namespace")
                scraped[(sample.name, labels)] = sample.value
    want: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for row in expected:
        if row["window"] == "1m" and row["metric"] in RESULT_COUNTERS:
            key = (RESULT_COUNTERS[row["metric"]].name, frozenset(row["labels"].items()))
            want[key] = want.get(key, 0) + row["value"]
    want = {k: v for k, v in want.items() if v}  # a counter that never grew is not exported
    assert (
        want
        and {k: v for k, v in scraped.items() if k[0] in {d.name for d in RESULT_COUNTERS.values()}}
        == want
    )
    # Windows finalised: one count per window with rows, though the flush finalises many
    # at once (it once counted one per emit).
    windows = {(r["window"], r["window_start"]) for r in expected if r["metric"] != "alert"}
    closed = {
        dict(labels)["window"]: v
        for (name, labels), v in scraped.items()
        if name == PROC_WINDOWS_CLOSED.name
    }
    assert closed == dict(Counter(w for w, _ in windows)) and closed["1m"] > 1


def test_poison_records_on_internal_topics_go_to_the_dlq_and_change_nothing(
    dataset, stack, namespace: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Crafted records on ``<ns>.proc.batches``, ``<ns>.proc.partials`` and a malformed flush
    request on ``<ns>.proc.control``: each is a dead letter with its reason, the agents
    keep running, and the results still equal the oracle."""
    import msgspec
    from kafka import KafkaProducer

    cfg, _, lines, expected = dataset
    config = load_config(cfg)
    delete_namespace(stack.bootstrap, namespace)
    ensure_topics(stack.bootstrap, namespace, config.kafka.partitions, 1)
    topics = Topics(namespace)
    bad_items = msgspec.msgpack.encode(
        {"wm": None, "flushed": False, "max_ts": None, "items": [[0, 0, 1.7e9, b"{nope", 1.7e9]]}
    )
    bad_role = msgspec.msgpack.encode(
        {"wm": None, "flushed": False, "max_ts": None, "items": [[7, 0, 1.7e9, b"{}", 1.7e9]]}
    )
    poison = [
        (topics.internal("batches"), 0, b"\x00not msgpack"),
        (topics.internal("batches"), 0, bad_role),
        (topics.internal("batches"), 1, bad_items),
        (topics.internal("batches"), 2, msgspec.msgpack.encode({"items": "?"})),
        (topics.internal("partials"), 0, b"\xc1"),
        (topics.internal("partials"), 0, msgspec.msgpack.encode({"t": "partial", "p": 0})),
        (topics.internal("control"), 0, b"{flush everything"),
    ]
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap)
    for topic, partition, value in poison:
        producer.send(topic, value, partition=partition)
    producer.flush()
    producer.close()
    log = tmp_path / "worker.log"
    worker = _worker(cfg, namespace, tmp_path / "w", log)
    try:
        produce_lines(stack.bootstrap, namespace, lines)
        request_flush(stack.bootstrap, namespace)
        got = collect_results(
            stack.bootstrap, namespace, timeout=300, alive=lambda: worker.poll() is None
        )
        assert worker.poll() is None, "the worker stopped"
    finally:
        _stop(worker)
    assert_same_rows(got, expected)
    consumer = KafkaConsumer(
        bootstrap_servers=stack.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000
    )
    consumer.assign([TopicPartition(topics.dlq, 0)])
    reasons = [dict(r.headers).get("ripple-reason") for r in consumer]
    consumer.close()
    assert reasons.count(b"invalid_internal_record") == 6
    assert reasons.count(b"invalid_control_record") == 1


def test_one_record_of_each_bounds_rule_spliced_in_changes_no_row(
    dataset, stack, namespace: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The clean dataset with one record per EVENTS.md bounds rule spliced in (the post
    dated 2999 first): the same results as the clean one, each spliced record in the DLQ
    with its reason, and the replay takes about as long."""
    from tests.processors.test_harness import _spliced

    cfg, _, lines, expected = dataset
    mid = len(lines) // 2
    bad = _spliced(json.loads(lines[mid])["ts"])
    events = tmp_path / "spliced.jsonl"
    events.write_bytes(b"\n".join([bad[0], *lines[:mid], *bad[1:], *lines[mid:]]) + b"\n")
    out = tmp_path / "out.jsonl"
    started = time.monotonic()
    run_replay(cfg, events, namespace, out)
    assert time.monotonic() - started < 240
    assert_same_rows(rows(out), expected)
    consumer = KafkaConsumer(
        bootstrap_servers=stack.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000
    )
    consumer.assign([TopicPartition(Topics(namespace).dlq, 0)])
    reasons = {r.value: dict(r.headers).get("ripple-reason") for r in consumer}
    consumer.close()
    assert [reasons.get(b) for b in bad] == [
        b"future_ts", b"invalid_ts", b"out_of_range", b"out_of_range", b"out_of_range",
        b"wrong_platform", b"invalid_url", b"invalid_session", b"too_large",
    ]  # fmt: skip
