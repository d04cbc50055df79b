"""The processors' pure core, in-process (processors.harness): equal to the independent
oracle on the v1 and r2 reference datasets, unmoved by out-of-bounds records, and bounded
by data when event time jumps by centuries."""

from __future__ import annotations

import json
import time

import orjson

from ingest.events import InvalidEvent, decode_event
from processors.core.stream_alerts import StreamAlerts, rules_of
from processors.harness import run
from tests.processors.job.test_replay import assert_same_rows
from tests.reference import dataset, dataset_r2
from tests.reference.oracle import compute_results, config_from_toml


def _plain(rows: list[dict]) -> list[dict]:
    return json.loads(json.dumps(rows))


def test_v1_dataset_equals_the_oracle() -> None:
    toml, lines = dataset.generate(seed=10)
    cfg = config_from_toml(toml)
    assert_same_rows(_plain(run(cfg, lines)), _plain(compute_results(lines, cfg)))


def test_r2_dataset_equals_the_oracle_alerts_included() -> None:
    toml, lines = dataset_r2.generate(seed=20)
    cfg = config_from_toml(toml)
    expected = _plain(compute_results(lines, cfg))
    names = {r["labels"]["alertname"] for r in expected if r["metric"] == "alert"}
    assert names == {
        "EngagementDrop",
        "MentionSpike",
        "NegativeSentimentSpike",
        "SocialReferralDrop",
    }
    assert {"top_posts", "top_authors", "top_links", "net_sentiment"} <= {
        r["metric"] for r in expected
    }
    assert_same_rows(_plain(run(cfg, lines)), expected)


# One record per EVENTS.md bounds rule, each valid but for that rule.
def _spliced(now: str) -> list[bytes]:
    post = {"v": 1, "id": "bluesky:spliced", "kind": "post", "platform": "bluesky", "ts": now,
            "ingested_at": now, "author": {"id": "did:plc:spliced", "followers": 5},
            "text": "acme acme acme", "hashtags": [], "links": []}  # fmt: skip
    pv = {"v": 1, "id": "web:spliced", "kind": "pageview", "platform": "web", "ts": now,
          "ingested_at": now, "site": "acme.com", "url": "https://acme.com/", "session": "s-1",
          "referrer": "https://t.co/x"}  # fmt: skip
    conv = {**pv, "kind": "conversion", "goal": "buy", "value": 1.0}
    bad = [
        {**post, "id": "bluesky:f1", "ts": "2999-01-01T00:00:00Z"},
        {**post, "id": "bluesky:f2", "ts": now.replace("Z", "+00:00")},
        {**post, "id": "bluesky:f3", "ts": "1999-12-31T23:59:59Z"},
        {**post, "id": "bluesky:f4", "author": {"id": "a", "followers": 1.5}},
        {**conv, "id": "web:f5", "value": -1},
        {**post, "id": "x:f6"},
        {**pv, "id": "web:f7", "url": "javascript:alert(1)"},
        {**pv, "id": "web:f8", "session": "10.0.0.1"},
        {**post, "id": "bluesky:f9", "text": "acme " * 20000},
    ]
    return [orjson.dumps(b) for b in bad]


def test_one_record_of_each_bounds_rule_changes_nothing() -> None:
    toml, lines = dataset.generate(seed=10)
    cfg = config_from_toml(toml)
    clean = run(cfg, lines)
    mid = len(lines) // 2
    now = json.loads(lines[mid])["ts"]
    bad = _spliced(now)
    reasons = []
    for b in bad:
        try:
            decode_event(b, cfg.kafka.max_event_bytes)
        except InvalidEvent as exc:
            reasons.append(exc.reason)
    assert reasons == ["future_ts", "invalid_ts", "out_of_range", "out_of_range", "out_of_range",
                       "wrong_platform", "invalid_url", "invalid_session", "too_large"]  # fmt: skip
    started = time.perf_counter()
    dirty = run(cfg, [*bad[:1], *lines[:mid], *bad[1:], *lines[mid:]])
    assert time.perf_counter() - started < 30
    assert dirty == clean


def test_a_valid_event_centuries_ahead_costs_what_a_minute_does() -> None:
    # ts and ingested_at both in 2999: within the bounds, so the watermark jumps 973 years
    # and every window closes; nothing may walk the minutes in between.
    toml, lines = dataset.generate(seed=10)
    cfg = config_from_toml(toml)
    far = {"v": 1, "id": "bluesky:far", "kind": "post", "platform": "bluesky",
           "ts": "2999-01-01T00:00:00Z", "ingested_at": "2999-01-01T00:00:00Z",
           "author": {"id": "did:plc:far", "followers": 1}, "text": "acme", "hashtags": [],
           "links": []}  # fmt: skip
    started = time.perf_counter()
    rows = run(cfg, [*lines[:3000], orjson.dumps(far), *lines[3000:]])
    assert time.perf_counter() - started < 30
    assert any(r["window_start"].startswith("2999-01-01") for r in rows)


def test_stream_alerts_evaluate_by_data_not_by_time() -> None:
    det = StreamAlerts(rules_of(config_from_toml("")))
    det.see_earliest(1_700_000_000.0)
    started = time.perf_counter()
    det.evaluate(int(1_700_000_000 + 1000 * 365 * 86400))  # a thousand years later
    assert time.perf_counter() - started < 1.0
