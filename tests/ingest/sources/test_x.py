"""X: parsing, rules, and the source against a local API v2 filtered stream (chunked,
newline-delimited JSON) replaying recorded stream lines into the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from ingest_helpers import FIXTURES, read_topic, run_cli_until, run_until, strip_ingested

from ingest.backoff import Backoff
from ingest.config import Brand, Campaign, Config
from ingest.cursors import CursorStore
from ingest.events import InvalidEvent, encode_event
from ingest.sources.x import XSource, build_rules, is_disconnect, parse_stream_line

FIX = FIXTURES / "x"
TOKEN = "test-bearer-token"


def stream_lines() -> list[bytes]:
    """The recorded stream lines as X sent them (twarc's ``__twarc`` annotation removed)."""
    out = []
    for raw in (FIX / "twarc_filtered_stream_2021-04-01_9lines.jsonl").read_bytes().splitlines():
        doc = json.loads(raw)
        doc.pop("__twarc", None)
        out.append(orjson.dumps(doc))
    return out


def retweet_line() -> bytes:
    """The recorded retweet (a search page) as a stream line."""
    page = json.loads((FIX / "twarc_tweets_page_with_retweet_2021-05-18.jsonl").read_bytes())
    return orjson.dumps(
        {
            "data": page["data"][0],
            "includes": page["includes"],
            "matching_rules": [{"id": "1", "tag": "ripple:acme"}],
        }  # fmt: skip
    )


def data_of(line: bytes) -> dict[str, Any]:
    return json.loads(line)["data"]


LINES = stream_lines()
QUOTE = {
    "kind": "post",
    "v": 1,
    "platform": "x",
    "id": "x:1377650090978992134",
    "ts": "2021-04-01T15:52:31.000Z",
    "author": {"id": "4602771083", "handle": "blackheart_265", "followers": 881},
    "text": "Fury https://t.co/YbMgHU5xRX https://t.co/tXgDG9jrKX",
    "url": "https://x.com/blackheart_265/status/1377650090978992134",
    "lang": "en",
    "hashtags": [],
    "links": [],  # a photo and the quoted tweet: neither is a link out
    "reply_to": None,
    "reply_to_author_id": None,
    "quote_of": "x:1377640162566496258",
    "quote_of_author_id": "41783881",
}
REPLY = {
    "kind": "post",
    "v": 1,
    "platform": "x",
    "id": "x:1377650093109743620",
    "ts": "2021-04-01T15:52:32.000Z",
    "author": {"id": "3026521093", "handle": "sheelaghb18", "followers": 837},
    "text": data_of(LINES[1])["text"],
    "url": "https://x.com/sheelaghb18/status/1377650093109743620",
    "lang": "en",
    "hashtags": [],
    "links": [],
    "reply_to": "x:1377266697850257410",
    "reply_to_author_id": "601852746",
    "quote_of": None,
    "quote_of_author_id": None,
}
LINKED = {
    "kind": "post",
    "v": 1,
    "platform": "x",
    "id": "x:1377650277642338305",
    "ts": "2021-04-01T15:53:16.000Z",
    "author": {"id": "238869624", "handle": "dreasaurusrex92", "followers": 134},
    "text": data_of(LINES[2])["text"],
    "url": "https://x.com/dreasaurusrex92/status/1377650277642338305",
    "lang": "en",
    "hashtags": [],
    "links": ["https://www.instagram.com/p/CNIQbqSrZRL/?igshid=je3jmv61ndpu"],
    "reply_to": None,
    "reply_to_author_id": None,
    "quote_of": None,
    "quote_of_author_id": None,
}
TAGGED_TAGS = ["dogsoftwitter", "dogs"]
RETWEET = {
    "kind": "reshare", "v": 1, "platform": "x", "id": "x:1394735776701816833",
    "ts": "2021-05-18T19:24:56.000Z",
    "author": {"id": "1379899464345923590", "handle": "LachiVeronica", "followers": 0},
    "target": "x:1391677057810288641",
    "target_url": "https://x.com/bibaigna96/status/1391677057810288641",
    "target_author_id": "1380086327023169540",
}  # fmt: skip
TWEET_IDS = sorted({f"x:{data_of(ln)['id']}" for ln in LINES if b'"data"' in ln})


def as_dict(ev: Any) -> dict[str, Any]:
    return strip_ingested(orjson.loads(encode_event(ev)))


# --- parsing and rules -----------------------------------------------------------------


def test_stream_lines_map_to_expected_events() -> None:
    got = {ev.id: as_dict(ev) for ln in LINES for ev in parse_stream_line(ln)}
    assert sorted(got) == TWEET_IDS and len(TWEET_IDS) == 7  # 9 lines: a disconnect, a duplicate
    assert got[QUOTE["id"]] == QUOTE
    assert got[REPLY["id"]] == REPLY
    assert got[LINKED["id"]] == LINKED
    assert got["x:1377650387579248643"]["hashtags"] == TAGGED_TAGS
    (rt,) = parse_stream_line(retweet_line())
    assert as_dict(rt) == RETWEET


def test_keepalive_disconnect_and_malformed_lines() -> None:
    assert parse_stream_line(b"\r\n") == []
    disconnect = next(ln for ln in LINES if b"operational-disconnect" in ln)
    assert parse_stream_line(disconnect) == [] and is_disconnect(json.loads(disconnect))
    assert not is_disconnect(json.loads(LINES[0]))
    for raw, reason in [
        (b'{"data": {"id": "1", "text": "x"', "invalid_json"),
        (b'{"data": {"id": "1", "created_at": "2021-04-01T15:52:31.000Z"}}', "missing_field"),
        (b'{"data": {"id": "1", "author_id": "2", "created_at": "soon"}}', "invalid_ts"),
        (b'{"data": ["x"]}', "wrong_type"),
    ]:
        with pytest.raises(InvalidEvent) as err:
            parse_stream_line(raw)
        assert err.value.reason == reason


def test_rules_from_tracked_terms() -> None:
    config = Config(
        brands=[
            Brand(name="acme", terms=["acme", "acme shoes"], hashtags=["#AcmeShoes"],
                  domains=["acme.com"], accounts={"x": ["@AcmeCo"]}),
            Brand(name="rival", terms=["rival"], competitor=True),
        ],
        campaigns=[Campaign(name="spring", brand="acme", hashtags=["AcmeSpring"])],
    )  # fmt: skip
    assert build_rules(config) == [
        {"value": '(acme OR "acme shoes" OR #AcmeShoes OR url:"acme.com" OR from:AcmeCo OR '
                  "@AcmeCo OR retweets_of:AcmeCo OR #AcmeSpring)", "tag": "ripple:acme"},
        {"value": "rival", "tag": "ripple:rival"},
    ]  # fmt: skip
    small = build_rules(config, max_length=40)
    assert all(len(r["value"]) <= 40 for r in small)
    assert [r["tag"] for r in small][:3] == ["ripple:acme", "ripple:acme#2", "ripple:acme#3"]


def test_documented_backoff_schedules() -> None:
    net = Backoff(0.25, 16.0, jitter=False, linear=True)
    assert [net.next_delay() for _ in range(66)][:4] == [0.25, 0.5, 0.75, 1.0]
    assert net.next_delay() == 16.0
    http = Backoff(5.0, 320.0, jitter=False)
    assert [http.next_delay() for _ in range(8)] == [5, 10, 20, 40, 80, 160, 320, 320]
    limited = Backoff(60.0, 960.0, jitter=False)
    assert [limited.next_delay() for _ in range(3)] == [60, 120, 240]


# --- a local X API -------------------------------------------------------------------------


@dataclass
class Conn:
    lines: list[bytes]
    end: str = "open"  # "open": keep-alives until the client leaves; "drop": abort TCP;
    # "close": end the response cleanly
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeX:
    plan: Callable[[int, dict[str, str]], Conn]  # (connection number, query) → what to do
    rules: dict[str, dict[str, str]] = field(default_factory=dict)
    rule_calls: list[Any] = field(default_factory=list)
    attempts: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    def _auth(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            raise web.HTTPUnauthorized(text='{"title":"Unauthorized","status":401}')

    async def stream(self, request: web.Request) -> web.StreamResponse:
        self._auth(request)
        n = len(self.attempts)
        self.attempts.append((time.monotonic(), dict(request.query)))
        conn = self.plan(n, dict(request.query))
        if conn.status != 200:
            return web.json_response({"title": "error", "status": conn.status},
                                     status=conn.status, headers=conn.headers)  # fmt: skip
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for line in conn.lines:
            await resp.write(line + b"\r\n")
            await resp.write(b"\r\n")  # keep-alive
        if conn.end == "drop":
            assert request.transport is not None
            request.transport.abort()
            return resp
        if conn.end == "open":
            with contextlib.suppress(ConnectionResetError):  # the client left
                while request.transport is not None and not request.transport.is_closing():
                    await asyncio.sleep(0.2)
                    await resp.write(b"\r\n")
        return resp

    async def get_rules(self, request: web.Request) -> web.Response:
        self._auth(request)
        data = [{"id": i, **r} for i, r in self.rules.items()]
        return web.json_response({"data": data, "meta": {"result_count": len(data)}})

    async def post_rules(self, request: web.Request) -> web.Response:
        self._auth(request)
        body = await request.json()
        self.rule_calls.append(body)
        for i in body.get("delete", {}).get("ids", []):
            self.rules.pop(i, None)
        for r in body.get("add", []):
            self.rules[str(1000 + len(self.rule_calls) * 10 + len(self.rules))] = r
        return web.json_response({"meta": {"summary": {}}})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def start(fake: FakeX) -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/2/tweets/search/stream", fake.stream)
    app.router.add_get("/2/tweets/search/stream/rules", fake.get_rules)
    app.router.add_post("/2/tweets/search/stream/rules", fake.post_rules)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner


def fast(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "url": url, "batch_linger_ms": 20, "network_backoff_step_seconds": 0.01,
        "network_backoff_max_seconds": 0.05, "http_backoff_initial_seconds": 0.2,
        "http_backoff_max_seconds": 1.0, "rate_limit_backoff_initial_seconds": 0.01,
        "rate_limit_backoff_max_seconds": 0.05, **extra,
    }  # fmt: skip


@pytest.fixture(autouse=True)
def bearer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)


async def test_stream_into_kafka_with_rules_disconnect_and_duplicates(
    stack: Any, namespace: str, cursor_store: CursorStore
) -> None:
    disconnect = next(i for i, ln in enumerate(LINES) if b"operational-disconnect" in ln)

    def plan(n: int, query: dict[str, str]) -> Conn:
        if n == 0:  # up to and including the operational-disconnect line, then it closes
            return Conn(LINES[: disconnect + 1], end="close")
        return Conn(LINES[disconnect + 1 :] + [retweet_line()])

    fake = FakeX(plan, rules={"7": {"value": "old rule", "tag": "ripple:gone"},
                              "8": {"value": "someone else's", "tag": "other"}})  # fmt: skip
    runner = await start(fake)
    config = Config(brands=[Brand(name="acme", terms=["dogs"], hashtags=["dogsoftwitter"])])
    try:
        src = XSource(config, fast(fake.url))
        await run_until(src, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 8)
    finally:
        await runner.cleanup()
    records = await read_topic(stack.bootstrap, f"{namespace}.events", 8)
    got = {r.json()["id"]: strip_ingested(r.json()) for r in records}
    assert len(records) == 8, "a duplicate delivery was produced twice"
    assert sorted(got) == sorted([*TWEET_IDS, RETWEET["id"]])
    for expected in (QUOTE, REPLY, LINKED, RETWEET):
        assert got[expected["id"]] == expected
    for rec in records:
        ev = rec.json()
        assert rec.key == (ev["id"] if ev["kind"] == "post" else ev["target"]).encode()
    # Rules: ours replaced, other tools' rules untouched.
    assert sorted(fake.rules.values(), key=lambda r: r["tag"]) == [
        {"value": "someone else's", "tag": "other"},
        {"value": "(dogs OR #dogsoftwitter)", "tag": "ripple:acme"},
    ]
    assert fake.rule_calls[0] == {"delete": {"ids": ["7"]}}
    q = fake.attempts[0][1]
    assert q["expansions"] == "author_id,referenced_tweets.id,referenced_tweets.id.author_id"
    assert "public_metrics" in q["user.fields"]
    assert len(fake.attempts) == 2 and src.metrics.reconnects == 1
    assert src.waits[0][0].startswith("operational disconnect")
    assert cursor_store.load("x") == {"newest_id": "1394735776701816833"}


async def test_drop_mid_stream_backfills_without_gap_or_duplicate(
    stack: Any, namespace: str, cursor_store: CursorStore
) -> None:
    tweets = [ln for ln in LINES if b'"data"' in ln][:7]

    def plan(n: int, query: dict[str, str]) -> Conn:
        if n == 0:
            return Conn(tweets[:3], end="drop")
        # X replays the last minutes on request: an overlap with what we already have.
        return Conn(tweets[1:] if "backfill_minutes" in query else tweets[5:])

    fake = FakeX(plan)
    runner = await start(fake)
    try:
        src = XSource(Config(), fast(fake.url, backfill_minutes=2, manage_rules=False))
        await run_until(src, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 6)
    finally:
        await runner.cleanup()
    ids = [r.json()["id"] for r in await read_topic(stack.bootstrap, f"{namespace}.events", 6)]
    assert len(ids) == len(set(ids)), "duplicate ids"
    assert sorted(ids) == sorted({f"x:{data_of(t)['id']}" for t in tweets}), "gap"
    assert "backfill_minutes" not in fake.attempts[0][1]
    assert fake.attempts[1][1]["backfill_minutes"] == "2"
    assert src.waits[0][0].startswith("network error")


async def test_429_retry_after_and_http_error_backoff(
    stack: Any, namespace: str, cursor_store: CursorStore
) -> None:
    def plan(n: int, query: dict[str, str]) -> Conn:
        if n == 0:
            return Conn([], status=429, headers={"Retry-After": "1"})
        if n == 1:
            return Conn([], status=503)
        return Conn(LINES[:2])

    fake = FakeX(plan)
    runner = await start(fake)
    try:
        src = XSource(Config(), fast(fake.url, manage_rules=False))
        await run_until(src, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 2)
    finally:
        await runner.cleanup()
    t = [a[0] for a in fake.attempts]
    assert 0.95 <= t[1] - t[0] < 3, t  # Retry-After: 1 (the 429 backoff alone: 0.01 s)
    assert 0.18 <= t[2] - t[1] < 2, t  # the HTTP-error schedule's first step (scaled: 0.2 s)
    assert src.waits[:2] == [("rate limited (429)", 1.0), ("HTTP error 503", 0.2)]
    assert src.metrics.rate_limited_waits == 1


async def test_malformed_line_goes_to_dlq_and_stream_goes_on(
    stack: Any, namespace: str, cursor_store: CursorStore
) -> None:
    bad = [b'{"data": {"id": "1", "text": "cut', b'{"data": {"id": "2", "text": "no author"}}']
    lines = LINES[:2] + bad[:1] + LINES[2:4] + bad[1:]

    fake = FakeX(lambda n, q: Conn(lines))
    runner = await start(fake)
    try:
        src = XSource(Config(), fast(fake.url, manage_rules=False))
        await run_until(src, stack.bootstrap, namespace, cursor_store,
                        lambda s: s.events >= 4 and s.rejected >= 2)  # fmt: skip
    finally:
        await runner.cleanup()
    dlq = await read_topic(stack.bootstrap, f"{namespace}.dlq", 2)
    assert {r.value: r.headers["ripple-reason"] for r in dlq} == {
        bad[0]: b"invalid_json",
        bad[1]: b"missing_field",
    }
    assert {r.headers["ripple-source"] for r in dlq} == {b"x"}
    ids = [r.json()["id"] for r in await read_topic(stack.bootstrap, f"{namespace}.events", 4)]
    assert sorted(ids) == sorted(f"x:{data_of(ln)['id']}" for ln in LINES[:4])


async def test_cli_streams_into_namespace(stack: Any, namespace: str, tmp_path: Any) -> None:
    fake = FakeX(lambda n, q: Conn(LINES[:4]))
    runner = await start(fake)
    try:
        records, out = await run_cli_until(
            "x", fake.url, stack.config_path, namespace, tmp_path / "c", stack.bootstrap, 4,
            env={"X_BEARER_TOKEN": TOKEN, "RIPPLE_LOG": "DEBUG"}, extra=["--log-level", "DEBUG"],
        )  # fmt: skip
    finally:
        await runner.cleanup()
    assert sorted(r.json()["id"] for r in records) == sorted(
        f"x:{data_of(ln)['id']}" for ln in LINES[:4]
    )
    assert TOKEN not in out  # the bearer token is never logged, even at DEBUG
