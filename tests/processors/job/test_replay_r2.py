"""Revision 2 end to end on the real broker: a replay of the r2 reference dataset
(tests/reference/dataset_r2.py) equals the independent oracle row for row, and every
invalid line is a dead letter with the reason EVENTS.md's bounds give it."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from ingest.config import load_config
from ingest.topics import Topics
from tests.processors.replay_helpers import rows, run_replay, write_dataset
from tests.reference.bounds import BOUNDS_REASONS
from tests.reference.dataset_r2 import generate
from tests.reference.oracle import compute_results, reason

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def replayed(stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """One replay of the r2 dataset: its results, dead letters and the oracle's view."""
    config_toml, lines = generate(seed=20)
    d = tmp_path_factory.mktemp("replay_r2")
    cfg, events = write_dataset(stack.config_path, config_toml, lines, d)
    config = load_config(cfg)
    expected = compute_results(lines, config)
    namespace = f"r2{uuid.uuid4().hex[:10]}"
    run_replay(cfg, namespace, d / "out.jsonl", "--input", str(events))
    return {
        "got": rows(d / "out.jsonl"),
        "expected": expected,
        "dead": _dead_letters(stack.bootstrap, namespace),
        "reasons": {line: reason(line, config) for line in lines},
    }


def _dead_letters(bootstrap: str, namespace: str) -> list[tuple[bytes, str]]:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000
    )
    try:
        topic = Topics(namespace).dlq
        parts = consumer.partitions_for_topic(topic) or {0}
        consumer.assign([TopicPartition(topic, p) for p in sorted(parts)])
        return [(r.value, (dict(r.headers).get("ripple-reason") or b"").decode()) for r in consumer]
    finally:
        consumer.close()


def _identity(r: dict[str, Any]) -> str:
    return json.dumps([r["metric"], r["window"], r["window_start"], r["labels"]], sort_keys=True)


def diff_summary(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> str:
    """Counts of missing / extra / different rows by metric, and a few of each."""
    g = {_identity(r): r for r in got}
    e = {_identity(r): r for r in expected}
    missing = [k for k in e if k not in g]
    extra = [k for k in g if k not in e]
    wrong = [k for k in e if k in g and g[k] != e[k]]
    lines = [f"{len(missing)} missing, {len(extra)} extra, {len(wrong)} different of {len(e)}"]
    for name, keys, src in (("missing", missing, e), ("extra", extra, g), ("different", wrong, e)):
        by = Counter(src[k]["metric"] for k in keys)
        if by:
            lines.append(f"{name} by metric: {dict(by.most_common())}")
        for k in keys[:4]:
            lines.append(f"  {name}: {k} expected={e.get(k, {}).get('value')} got={g.get(k, {}).get('value')}")  # fmt: skip
    return "\n".join(lines)


def test_r2_replay_equals_the_reference(replayed: dict[str, Any]) -> None:
    got, expected = replayed["got"], replayed["expected"]
    assert any(r["metric"] == "alert" for r in expected)
    assert got == expected, diff_summary(got, expected)


def test_r2_invalid_lines_are_dead_letters_with_their_reason(replayed: dict[str, Any]) -> None:
    """Exact reasons where EVENTS.md names them (the bounds); a structural fault only needs
    a reason that is not one of those."""
    want = {line: why for line, why in replayed["reasons"].items() if why is not None}
    dead = dict(replayed["dead"])
    assert sorted(dead) == sorted(want), (
        f"{len(set(want) - set(dead))} invalid lines not in the DLQ, "
        f"{len(set(dead) - set(want))} dead letters the reference finds valid: "
        f"{[x[:120] for x in list(set(want) - set(dead))[:3]]} {[x[:120] for x in list(set(dead) - set(want))[:3]]}"
    )

    def agrees(why: str, got: str) -> bool:
        return got == why if why in BOUNDS_REASONS else bool(got) and got not in BOUNDS_REASONS

    wrong = {line[:100]: (why, dead[line]) for line, why in want.items() if not agrees(why, dead[line])}  # fmt: skip
    assert not wrong, f"{len(wrong)} reasons differ (expected, got): {wrong}"
