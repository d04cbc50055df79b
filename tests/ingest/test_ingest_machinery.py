"""The shared ingestor machinery: cursors, backoff, rate-limit headers, tracked terms, runner."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ingest.backoff import Backoff, parse_retry_after, ratelimit_wait
from ingest.config import Brand, Campaign, Config
from ingest.cursors import CursorStore, cursor_dir
from ingest.events import Author, Event, Post
from ingest.matching_filter import TrackedTerms
from ingest.runner import run_source
from ingest.sources.base import Batch, RecentIds, Rejected, Source, load_settings
from ingest.sources.cli import source_settings

# --- cursors -----------------------------------------------------------------------------


def test_cursor_store_round_trip_and_atomic_replace(tmp_path: Path) -> None:
    store = CursorStore(tmp_path / "c")
    assert store.load("bluesky") is None
    store.save("bluesky", {"time_us": 1})
    store.save("bluesky", {"time_us": 2})
    assert store.load("bluesky") == {"time_us": 2}
    assert sorted(os.listdir(tmp_path / "c")) == ["bluesky.json"]  # no tmp files left
    (tmp_path / "c" / "x.json").write_text("{truncated")
    assert store.load("x") is None  # unreadable: start from now rather than crash
    assert store.path("../evil").parent == tmp_path / "c"


def test_cursor_dir_under_state_dir() -> None:
    assert cursor_dir(Config()) == Path(".ripple") / "cursors"
    assert cursor_dir(Config(), "/x") == Path("/x")


# --- backoff and rate limits -------------------------------------------------------------


def test_full_jitter_stays_under_the_exponential_cap() -> None:
    b = Backoff(1.0, 8.0)
    caps = [1, 2, 4, 8, 8, 8]
    for cap in caps:
        d = b.next_delay()
        assert 0 <= d <= cap
    b.reset()
    assert b.peek() == 1.0


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0 ") == 0.0
    now = 1_800_000_000.0
    date = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 0.0  # in the past
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_ratelimit_headers() -> None:
    # Reddit: reset in seconds from now.
    assert ratelimit_wait({"X-Ratelimit-Remaining": "0.0", "X-Ratelimit-Reset": "42"}) == 42.0
    assert ratelimit_wait({"X-Ratelimit-Remaining": "12.0", "X-Ratelimit-Reset": "42"}) is None
    # X: reset as a unix time.
    headers = {"x-rate-limit-remaining": "0", "x-rate-limit-reset": "1800000060"}
    assert ratelimit_wait(headers, now=1_800_000_000.0) == 60.0
    # Retry-After wins, whatever the case of the header name.
    assert (
        ratelimit_wait(
            {"retry-after": "5", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "42"}
        )
        == 5.0
    )
    assert ratelimit_wait({}) is None


# --- tracked terms ---------------------------------------------------------------------------


def test_tracked_terms_normalise_and_match() -> None:
    cfg = Config(
        brands=[Brand(name="acme", terms=["Acme Shoes", "acme"], hashtags=["#AcmeShoes"],
                      domains=["www.acme.com"], accounts={"x": ["@AcmeCo"]})],
        campaigns=[Campaign(name="s", brand="acme", hashtags=["Spring26"])],
    )  # fmt: skip
    t = TrackedTerms.from_config(cfg)
    assert t.terms == ("acme shoes", "acme")
    assert t.hashtags == ("acmeshoes", "spring26")
    assert t.domains == ("acme.com",)
    assert t.accounts_for("x") == ("acmeco",)
    assert t.matches("I love ACME!")
    assert not t.matches("acmeville is nice")
    assert t.matches("", hashtags=["Spring26"])
    assert t.matches("", links=["https://shop.acme.com/p/1"])
    assert not t.matches("", links=["https://notacme.com/"])
    assert t.matches("", authors=["@acmeco"], platform="x")
    assert not t.matches("", authors=["acmeco"], platform="bluesky")
    assert TrackedTerms().matches("anything")  # nothing tracked: keep everything


def test_recent_ids_is_bounded() -> None:
    r = RecentIds(capacity=2)
    assert not r.seen("a") and r.seen("a")
    r.seen("b")
    r.seen("c")
    assert "a" not in r and len(r) == 2


def test_settings_validation_and_cli_overrides() -> None:
    import argparse

    import msgspec

    from ingest.config import ConfigError

    class S(msgspec.Struct, forbid_unknown_fields=True):
        url: str = "u"
        n: int = 1

    assert load_settings(S, "s", {"n": "3"}).n == 3
    with pytest.raises(ConfigError, match="sources.s"):
        load_settings(S, "s", {"typo": 1})
    cfg = Config(sources={"s": {"n": 1}})
    args = argparse.Namespace(url="ws://h/subscribe", set=["n=5", "tags=['a']", "name=plain"])
    assert source_settings(cfg, "s", args) == {
        "n": 5,
        "tags": ["a"],
        "name": "plain",
        "url": "ws://h/subscribe",
    }


# --- runner ordering ---------------------------------------------------------------------------


def _post(i: int) -> Post:
    ts = f"2026-01-01T00:00:{i:02d}.000Z"
    return Post(v=1, id=f"bluesky:{i}", platform="bluesky", ts=ts, ingested_at=ts,
                author=Author(id="a"))  # fmt: skip


class ListSource(Source):
    name = "list"

    def __init__(self, batches: list[Batch]) -> None:
        super().__init__(Config(), {})
        self._batches = batches
        self.closed = False

    async def batches(self) -> AsyncIterator[Batch]:
        for b in self._batches:
            yield b

    async def aclose(self) -> None:
        self.closed = True


class RecordingProducer:
    """Records the order of calls; fails on demand (stands in for a broker that errors)."""

    def __init__(self, store: CursorStore, fail_on: int | None = None) -> None:
        self.calls: list[Any] = []
        self.store = store
        self.fail_on = fail_on

    async def send_events(self, events: list[Event]) -> None:
        self.calls.append(("events", [e.id for e in events], self.store.load("list")))
        if self.fail_on is not None and len(self.calls) >= self.fail_on:
            raise RuntimeError("broker down")

    async def dead_letter(
        self, raw: bytes, reason: str, detail: str, source: str | None = None
    ) -> None:
        self.calls.append(("dlq", raw, reason, source))


async def test_runner_checkpoints_only_after_the_events_are_acknowledged(tmp_path: Path) -> None:
    store = CursorStore(tmp_path)
    batches = [
        Batch([_post(1), _post(2)], [Rejected(b"x", "invalid_json", "d")], cursor={"n": 1}),
        Batch([], [], cursor=None),
        Batch([_post(3)], [], cursor={"n": 2}),
    ]
    producer = RecordingProducer(store)
    src = ListSource(batches)
    stats = await run_source(src, producer, store)
    assert producer.calls == [
        ("dlq", b"x", "invalid_json", "list"),
        ("events", ["bluesky:1", "bluesky:2"], None),  # cursor not yet written when sending
        ("events", ["bluesky:3"], {"n": 1}),
    ]
    assert store.load("list") == {"n": 2}
    assert (stats.events, stats.rejected, stats.checkpoints) == (3, 1, 2)
    assert src.closed


async def test_runner_never_checkpoints_a_batch_kafka_did_not_take(tmp_path: Path) -> None:
    store = CursorStore(tmp_path)
    batches = [Batch([_post(1)], cursor={"n": 1}), Batch([_post(2)], cursor={"n": 2})]
    producer = RecordingProducer(store, fail_on=2)
    with pytest.raises(RuntimeError):
        await run_source(ListSource(batches), producer, store)
    assert store.load("list") == {"n": 1}


async def test_runner_stops_on_request(tmp_path: Path) -> None:
    class Forever(ListSource):
        async def batches(self) -> AsyncIterator[Batch]:
            while True:
                await asyncio.sleep(3600)
                yield Batch()

    stop = asyncio.Event()
    src = Forever([])
    task = asyncio.create_task(
        run_source(src, RecordingProducer(CursorStore(tmp_path)), CursorStore(tmp_path), stop=stop)
    )
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert src.closed
    assert json.dumps(task.result().events) == "0"


async def test_runner_refuses_a_platform_item_dated_in_the_future_at_the_door(
    tmp_path: Path,
) -> None:
    # EVENTS.md bounds: the ingestor's own clock (ingested_at) says when it saw the item.
    future = msgspec.structs.replace(_post(2), ts="2999-01-01T00:00:00.000Z")
    store = CursorStore(tmp_path)
    producer = RecordingProducer(store)
    stats = await run_source(
        ListSource([Batch([_post(1), future], [], cursor={"n": 1})]), producer, store
    )
    assert [c[0] for c in producer.calls] == ["dlq", "events"]
    assert producer.calls[0][2:] == ("future_ts", "list")
    assert producer.calls[1][1] == ["bluesky:1"]
    assert store.load("list") == {"n": 1}  # the cursor advances past the refused item
    assert (stats.events, stats.rejected) == (1, 1)
