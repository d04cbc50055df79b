"""``ripple replay`` extended: --from-kafka with --since/--until, --speed pacing and progress,
and --backfill into the real Prometheus at the events' original times."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from deploy.backfill import BackfillError, backfill
from deploy.commands.replay import Pacer
from deploy.history import DEMO_CONFIG, HistorySpec, generate
from ingest.config import load_config
from ingest.events import format_ts, parse_ts
from ingest.topics import Topics
from processors.catalogue import RESULT_COUNTERS
from processors.core.results import row
from processors.history.backfill import HEAD_BLOCK_SECONDS, counts_of_rows
from processors.history.replay import produce_lines
from processors.history.replay_kafka import parse_time
from tests.kafka_records import topic_config
from tests.processors.replay_helpers import replay_config, ripple, rows, run_replay

# --- arguments and pacing, without the stack ------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "x.jsonl", "--from-kafka"], "not allowed with argument"),
        (["--from-kafka", "--since", "2025-11-20T08:00:00Z"], "needs --since T and --until T"),
        (["--input", "x.jsonl", "--since", "1763625600"], "only go with --from-kafka"),
        (["--from-kafka", "--since", "yesterday", "--until", "1"], "not an RFC 3339 time"),
        (["--from-kafka", "--since", "200", "--until", "100"], "must be after"),
        (
            ["--from-kafka", "--source-namespace", "r1", "--since", "1", "--until", "2"],
            "is the source",
        ),
        ([], "one of the arguments --input --from-kafka is required"),
    ],
)
def test_bad_source_arguments_are_clear_errors(args: list[str], message: str) -> None:
    proc = ripple("replay", "--namespace", "r1", "--out", "/dev/null", *args, timeout=60)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_times_parse_as_rfc3339_or_unix_seconds() -> None:
    assert parse_time("2025-11-20T08:00:00Z") == 1_763_625_600
    assert parse_time("2025-11-20T09:00:00+01:00") == 1_763_625_600
    assert parse_time("2025-11-20T08:00:00") == 1_763_625_600  # no offset: UTC
    assert parse_time("1763625600.5") == 1_763_625_600.5


def test_pacer_follows_event_time_at_the_given_speed() -> None:
    pace = Pacer(60.0)
    started = time.monotonic()
    for s in range(0, 61, 5):  # one minute of event time at 60x: about one second
        pace(1_763_625_600_000 + s * 1000)
    pace(None)  # invalid lines do not pace
    assert 0.95 < time.monotonic() - started < 1.5


def test_backfill_refuses_history_within_the_head_block(tmp_path: Path) -> None:
    now = time.time()
    start = int(now - 3600) // 60 * 60
    recent = [row("mentions", "1m", start, start + 60, {"brand": "a", "platform": "x"}, 1)]
    with pytest.raises(BackfillError, match="nothing to backfill.*3 hours"):
        backfill(
            counts_of_rows(recent), "r1", load_config(None, env={}), tmp_path / "x.om", now=now
        )


# --- against the real stack -----------------------------------------------------------------


def replay_events(bootstrap: str, namespace: str) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=3000)  # fmt: skip
    consumer.assign([TopicPartition(Topics(namespace).events, 0)])
    try:
        return [r.value for r in consumer]
    finally:
        consumer.close()


def with_ts(line: bytes, ident: str, ts: float) -> bytes:
    """A copy of the event under another id (of its own platform: EVENTS.md's bounds)."""
    ev = orjson.loads(line)
    ev.update(id=f"{ev['platform']}:{ident}", ts=format_ts(ts), ingested_at=format_ts(ts))
    return orjson.dumps(ev)


def test_from_kafka_replays_exactly_the_events_in_range(
    stack, namespace: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    spec = HistorySpec(hours=1.0, seed=5)
    lines = list(generate(spec))
    since, until = spec.start + 10 * 60 + 7.5, spec.start + 40 * 60
    ts = [parse_ts(orjson.loads(line)["ts"]) for line in lines]
    # Late records: one in range arriving after --until (within the slack: kept), one from
    # before --since arriving inside the range (dropped).
    cut = next(i for i, t in enumerate(ts) if t >= until + 300)
    late_in = with_ts(lines[0], "late-in", since + 600)
    late_out = with_ts(lines[1], "late-out", since - 60)
    middle = next(i for i, t in enumerate(ts) if t >= since + 900)
    stream = lines[:middle] + [late_out] + lines[middle:cut] + [late_in] + lines[cut:]
    source = f"{namespace}src"
    stack.create_topics(Topics(source).events, partitions=3, config={"retention.ms": "-1"})
    produce_lines(stack.bootstrap, source, stream)  # keyed: spread over the 3 partitions

    expected = [line for line in stream if since <= parse_ts(orjson.loads(line)["ts"]) < until]
    assert late_in in expected and late_out not in expected
    cfg = replay_config(stack.config_path, DEMO_CONFIG, tmp_path / "ripple.toml")
    out = run_replay(cfg, namespace, tmp_path / "kafka.jsonl", "--from-kafka", "--source-namespace", source,
                     "--since", format_ts(since), "--until", str(until))  # fmt: skip
    assert f"replayed {len(expected)} events from {source}.events" in out
    # The replay's topics keep old event times: the broker's retention must not eat its input.
    assert topic_config(stack.bootstrap, Topics(namespace).events)["retention.ms"] == "-1"
    got = replay_events(stack.bootstrap, namespace)
    assert sorted(got) == sorted(expected)
    # Merged by timestamp, the partitions give back the stream's order (ties aside).
    order = [
        parse_ts(orjson.loads(v)["ts"])
        for v in got
        if not orjson.loads(v)["id"].endswith(":late-in")
    ]
    assert order == sorted(order)

    direct = tmp_path / "direct-in.jsonl"
    direct.write_bytes(b"\n".join(expected) + b"\n")
    run_replay(cfg, f"{namespace}d", tmp_path / "direct.jsonl", "--input", str(direct))
    assert rows(tmp_path / "kafka.jsonl") == rows(tmp_path / "direct.jsonl")


def prom_query(url: str, expr: str, at: float) -> list[dict[str, Any]]:
    q = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
    with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def test_backfill_makes_the_replay_queryable_at_its_original_times(
    stack, namespace: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    start = (int(time.time()) - 86_400) // 60 * 60  # a day ago: far from the head block
    assert start < time.time() - HEAD_BLOCK_SECONDS
    lines = list(generate(HistorySpec(start=float(start), hours=0.5, seed=11, drop_brand=None)))
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    cfg = replay_config(stack.config_path, DEMO_CONFIG, tmp_path / "ripple.toml")
    out = tmp_path / "results.jsonl"
    stdout = run_replay(cfg, namespace, out, "--input", str(events), "--backfill")
    assert "backfilled" in stdout and "loaded them" in stdout, stdout
    assert out.with_name("results.jsonl.om").read_text().endswith("# EOF\n")

    # Expected counter values: the running sums of the 1m rows, per series.
    cumulative: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for r in sorted(rows(out), key=lambda r: r["window_end"]):
        if r["window"] == "1m" and r["metric"] in RESULT_COUNTERS:
            key = (RESULT_COUNTERS[r["metric"]].name, json.dumps(r["labels"], sort_keys=True))
            before = cumulative[key][-1][1] if cumulative[key] else 0
            cumulative[key].append((parse_ts(r["window_end"]), before + r["value"]))
    assert {k[0] for k in cumulative} >= {"ripple_smm_mentions_total", "ripple_smo_pageviews_total"}
    checked = 0
    for (name, labels), points in sorted(cumulative.items()):
        for at, value in (points[0], points[len(points) // 2], points[-1]):
            selector = ",".join(f'{k}="{v}"' for k, v in json.loads(labels).items())
            got = prom_query(
                stack.prometheus_url, f'{name}{{namespace="{namespace}",{selector}}}', at
            )
            assert len(got) == 1, (name, labels, at, got)
            assert float(got[0]["value"][1]) == value and got[0]["value"][0] == at
            checked += 1
    assert checked >= 30
    # Amplification's parts have no row of their own, only the ratio: each 1m window's
    # increase of reshares over amplifiable posts is that window's amplification row.
    amplification = [r for r in rows(out) if r["metric"] == "amplification" and r["window"] == "1m"]
    assert len(amplification) >= 3
    for r in amplification[:: max(1, len(amplification) // 5)]:
        selector = ",".join(f'{k}="{v}"' for k, v in r["labels"].items())
        end = parse_ts(r["window_end"])
        grew = {}
        for name in ("ripple_smm_reshares_total", "ripple_smm_amplifiable_posts_total"):
            series = f'{name}{{namespace="{namespace}",{selector}}}'
            now_, before = (prom_query(stack.prometheus_url, series, t) for t in (end, end - 60))
            grew[name] = float(now_[0]["value"][1]) - (
                float(before[0]["value"][1]) if before else 0
            )
        ratio = grew["ripple_smm_reshares_total"] / grew["ripple_smm_amplifiable_posts_total"]
        assert ratio == pytest.approx(r["value"], rel=1e-12), r
    # And what the dashboards ask: a rate over the replayed hour, at its original time.
    mid = start + 15 * 60
    rate = prom_query(stack.prometheus_url,
                      f'sum(rate(ripple_smm_mentions_total{{namespace="{namespace}"}}[5m]))', mid)  # fmt: skip
    assert rate and float(rate[0]["value"][1]) > 0


def test_backfill_with_a_prometheus_restart(stack, namespace: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    start = (int(time.time()) - 2 * 86_400) // 60 * 60
    labels = {"site": "acme.com"}
    rows_ = [
        row("pageviews", "1m", start + 60 * m, start + 60 * m + 60, labels, m + 1)
        for m in range(30)
    ]
    report = backfill(
        counts_of_rows(rows_),
        namespace,
        load_config(stack.config_path),
        tmp_path / "x.om",
        reload="restart",
    )
    assert report.loaded == "Prometheus restarted" and report.blocks
    end = start + 30 * 60
    got = prom_query(
        stack.prometheus_url, f'ripple_smo_pageviews_total{{namespace="{namespace}"}}', end
    )
    assert float(got[0]["value"][1]) == sum(range(1, 31))
