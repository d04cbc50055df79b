"""The demo's parts that need no stack: its plan, pacing, history and terminal summary."""

from __future__ import annotations

import tomllib
from collections import defaultdict

import orjson
import pytest

from deploy.demo import (
    DROP,
    CatchUpPacer,
    DemoPlan,
    Feeder,
    collector_item,
    make_plan,
)
from deploy.demo_view import Summary, render, stream_alert, where_to_look
from deploy.history import DEMO_CONFIG, DEMO_TOML, HistorySpec, generate
from ingest.config import load_config
from ingest.events import Event, Post, Reaction, Reshare, decode_event, parse_ts
from ingest.web.wire import to_event
from processors.harness import run

NOW = 1_795_000_000.0


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def test_pacer_runs_fast_until_it_reaches_the_clock_then_real_time() -> None:
    clock = Clock(NOW)
    pace = CatchUpPacer(100.0, clock=clock, sleep=clock.sleep)
    pace(NOW - 1000)  # origin
    pace(NOW - 500)  # 500s of event time: 5s of wall time
    assert clock.t == pytest.approx(NOW + 5)
    pace(NOW + 4)  # already due by the fast pace's rule, but not yet by the clock
    assert clock.t == pytest.approx(NOW + 10)  # fast pace: 1004s / 100
    pace(NOW + 60)  # live: waits for its own time
    assert clock.t == pytest.approx(NOW + 60)


def test_plan_ends_the_history_now_and_keeps_ids_unique_per_start() -> None:
    plan = make_plan(NOW, hours=4, drop_at_hours=3, live_minutes=0)
    assert plan.spec.start == (NOW // 60) * 60 - 4 * 3600
    assert plan.until == plan.live_from == NOW
    assert plan.spec.id_prefix != make_plan(NOW + 3600, live_minutes=0).spec.id_prefix
    live = make_plan(NOW, live_minutes=2)
    assert live.until == float("inf")
    assert live.spec.start + live.spec.hours * 3600 > NOW + 2 * 60
    with pytest.raises(ValueError):
        make_plan(NOW, hours=2, drop_at_hours=3)


def test_demo_toml_is_the_history_config_and_loads() -> None:
    assert DEMO_TOML.read_text() == DEMO_CONFIG
    cfg = load_config(DEMO_TOML)
    assert [b.name for b in cfg.brands] == ["acme", "globex", "initech"]
    assert [c.name for c in cfg.campaigns] == ["bf2026"]
    assert cfg.sites and cfg.sites[0].name == "acme.com"
    # Tracking rules only: the benchmarks prepend their own [kafka] table to it.
    assert not {"kafka", "stack", "collector"} & set(tomllib.loads(DEMO_CONFIG))


def test_live_web_events_become_valid_collector_requests() -> None:
    lines = generate(HistorySpec(start=NOW, hours=0.1, id_prefix="x-"))
    web = [orjson.loads(x) for x in lines if b'"platform":"web"' in x]
    assert {e["kind"] for e in web} == {"pageview", "share_click", "conversion"}
    for ev in web:
        item = collector_item(ev)
        assert not {"v", "ts", "id", "platform", "ingested_at"} & set(item)
        out = to_event(item, "2026-11-20T10:00:00.000Z")
        assert (out.kind, out.site, out.session) == (ev["kind"], ev["site"], ev["session"])


def test_feeder_skips_history_when_told_and_stops_at_the_end() -> None:
    spec = HistorySpec(start=NOW - 600, hours=0.2)
    lines = list(generate(spec))
    plan = DemoPlan(spec, NOW - 300, NOW - 120, replay_history=False)
    feeder = Feeder(plan, "unused:9092", "ns", 1e9, None, lines=lines)
    clock = Clock(NOW - 600)
    feeder.pacer = CatchUpPacer(1e9, clock=clock, sleep=clock.sleep)
    sent = list(feeder.events())
    times = [parse_ts(orjson.loads(x)["ts"]) for x in sent]
    assert sent and all(NOW - 300 <= t < NOW - 120 for t in times)
    assert feeder.progress.produced == len(sent)


def _brand_of_posts(events: list[Event]) -> dict[str, str]:
    """Each post's brand: the demo history's posts name theirs in the text."""
    return {
        e.id: next(b for b in ("acme", "globex", "initech") if b in e.text.lower())
        for e in events
        if isinstance(e, Post)
    }


def _fires(spec: HistorySpec) -> list[tuple[float, str, str, str]]:
    """The stream alerts of the processors' core (in-process harness) over the history:
    (hours into it, alertname, brand, platform) of every alert that fires."""
    rows = run(load_config(DEMO_TOML), list(generate(spec)))
    return [
        ((parse_ts(r["window_start"]) - spec.start) / 3600, r["labels"]["alertname"],
         r["labels"]["brand"], r["labels"]["platform"])
        for r in rows
        if r["metric"] == "alert" and r["value"] == 1
    ]  # fmt: skip


def test_only_the_planned_drop_and_spikes_fire_in_the_demo_history() -> None:
    # The demo's history and an hour of live traffic after it.
    spec = make_plan(NOW, live_minutes=60).spec
    spec = HistorySpec(**{**spec.__dict__, "hours": 5.0})
    fires = _fires(spec)
    assert sorted(f[1:] for f in fires) == sorted(
        [
            DROP,
            ("MentionSpike", "globex", "mastodon"),
            ("NegativeSentimentSpike", "globex", "mastodon"),
        ]
    )
    at = {f[1]: f[0] for f in fires}
    assert 3.0 < at["EngagementDrop"] < 3.25  # within 15 minutes of the drop
    assert 2.0 < at["MentionSpike"] < 2.34 and 2.0 < at["NegativeSentimentSpike"] < 2.34


def test_summary_renders_brands_referrals_and_alerts() -> None:
    s = Summary(
        brands={"acme": (500, 2e6, 300), "globex": (300, 1e6, 100)},
        referrals={"x": 40, "bluesky": 60},
        events=12000,
        watermark_age=3,
        workers_up=(1, 1),
        am_alerts=["EngagementDrop acme/bluesky [active, stream, since 13:40 UTC]"],
    )
    text = "\n".join(render(s, "ripple"))
    assert "acme" in text and "62%" in text and "2.0M" in text
    assert text.index("bluesky 60") < text.index("x 40")
    assert "EngagementDrop acme/bluesky [active, stream" in text
    alerts = [{"labels": {"alertname": "EngagementDrop", "source": "stream",
                          "brand": "acme", "platform": "bluesky"}}]  # fmt: skip
    assert stream_alert(alerts, *DROP)
    assert not stream_alert(alerts, "EngagementDrop", "globex", "bluesky")


def test_where_to_look_names_every_place() -> None:
    lines = "\n".join(
        where_to_look("http://p:1", "http://a:2", ["http://w:3"], "http://c:4", "ripple")
    )
    for part in ("http://p:1/graph?", "http://p:1/alerts", "--alertmanager.url=http://a:2",
                 "http://w:3/metrics", "http://c:4/ripple.js", "grafana/provisioning"):  # fmt: skip
        assert part in lines


def test_history_drop_only_touches_the_drop_pair() -> None:
    counts: dict[tuple[str, str, bool], int] = defaultdict(int)
    spec = HistorySpec(start=NOW, hours=2.0, drop_at_hours=1.0, social_per_minute=120)
    events = [decode_event(x) for x in generate(spec)]
    posts = _brand_of_posts(events)
    for e in events:
        if isinstance(e, Reshare | Reaction):
            after = parse_ts(e.ts) >= NOW + 3600
            counts[(posts[e.target], e.platform, after)] += 1
    acme = counts[("acme", "bluesky", True)] / counts[("acme", "bluesky", False)]
    globex = counts[("globex", "bluesky", True)] / counts[("globex", "bluesky", False)]
    assert acme < 0.2  # falls to about 10%
    assert 0.8 < globex < 1.25  # the platform's other brands carry on


def test_history_present_looks_at_event_times(stack, namespace: str) -> None:
    from kafka import KafkaProducer

    from deploy.demo import history_present
    from ingest.topics import Topics

    topic = Topics(namespace).events
    stack.create_topics(topic, partitions=2)
    assert not history_present(stack.bootstrap, namespace, NOW - 3600)
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap)
    producer.send(topic, b"{}", partition=1, timestamp_ms=int(NOW * 1000))
    producer.flush()
    producer.close()
    assert history_present(stack.bootstrap, namespace, NOW - 3600)
    assert not history_present(stack.bootstrap, namespace, NOW + 1)
