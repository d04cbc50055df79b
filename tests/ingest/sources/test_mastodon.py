"""Mastodon: parsing, and the source against a local server speaking the streaming API
(text/event-stream) and the timelines API, replaying recorded Mastodon 4.6 payloads."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from ingest_helpers import FIXTURES, read_topic, run_cli_until, run_until, strip_ingested

from ingest.config import Brand, Config
from ingest.cursors import CursorStore
from ingest.events import InvalidEvent, encode_event
from ingest.sources.mastodon import (
    MastodonSource,
    full_acct,
    html_to_text,
    notification_events,
    parse_sse_event,
    split_sse_messages,
    status_events,
    stream_spec,
)

FIX = FIXTURES / "mastodon"
USER_SSE = FIX / "mastodonpy_sse_user_stream_update_notification_statusupdate_delete.sse"
SINGLE_SSE = FIX / "mastodonpy_sse_user_stream_single_update.sse"
DIRECT_SSE = FIX / "mastodonpy_sse_direct_stream_conversation.sse"
ACCT = "mastodonpy_test@localhost"
U = "http://localhost:3000/ap/users"


def load(name: str) -> Any:
    return json.loads((FIX / name).read_text())


def sse(event: str, payload: Any) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"event: {event}\ndata: {data}".encode()


def favourite_notification() -> dict[str, Any]:
    """A v1 ``favourite`` notification, from the recorded grouped notification's parts."""
    grouped = load("mastodonpy_grouped_notification_favourite_v2.json")
    return {
        "id": "32",
        "type": "favourite",
        "created_at": "2026-08-01T13:52:30.000Z",
        "account": grouped["accounts"][0],
        "status": grouped["statuses"][0],
    }


def fixture_blocks() -> list[bytes]:
    """Every recorded stream message, plus the recorded boost, quote and hashtag statuses."""
    blocks = split_sse_messages(USER_SSE.read_bytes())
    blocks += split_sse_messages(SINGLE_SSE.read_bytes())
    blocks += split_sse_messages(DIRECT_SSE.read_bytes())
    blocks.append(sse("update", load("mastodonpy_status_reblog_response.json")))
    blocks.append(sse("update", load("mastodonpy_status_with_quote.json")))
    blocks.append(sse("update", load("mastodonpy_hashtag_timeline.json")[0]))
    blocks.append(sse("notification", favourite_notification()))
    return blocks


def post(uid: str, sid: str, **kw: Any) -> dict[str, Any]:
    base = {
        "kind": "post", "v": 1, "platform": "mastodon",
        "id": f"mastodon:{U}/{uid}/statuses/{sid}", "hashtags": [], "links": [],
        "reply_to": None, "reply_to_author_id": None, "quote_of": None, "quote_of_author_id": None,
    }  # fmt: skip
    return {**base, **kw}


# Written by hand from the recorded payloads.
EXPECTED = [
    post("117020617404561855", "117024236332527350", ts="2026-08-02T05:22:17.399Z",
         author={"id": ACCT, "handle": ACCT, "followers": 0}, text="only real cars respond.",
         url="http://localhost:3000/@mastodonpy_test/117024236332527350", lang="ja"),
    post("117020617136550219", "117024236408130890", ts="2026-08-02T05:22:18.555Z",
         author={"id": "admin@localhost", "handle": "admin@localhost", "followers": 0},
         text="@mastodonpy_test beep beep I'm a jeep",
         url="http://localhost:3000/@admin/117024236408130890", lang="en"),
    post("117020617404561855", "117024248092393661", ts="2026-08-02T05:25:16.840Z",
         author={"id": ACCT, "handle": ACCT, "followers": 0}, text="it's cool guy",
         url="http://localhost:3000/@mastodonpy_test/117024248092393661", lang="ja"),
    {
        "kind": "reshare", "v": 1, "platform": "mastodon", "ts": "2026-08-01T13:53:58.160Z",
        "id": f"mastodon:{U}/117020565966271181/statuses/117020586019094258#reblogged_by/{ACCT}",
        "author": {"id": ACCT, "handle": ACCT, "followers": 0},
        "target": f"mastodon:{U}/117020565966271181/statuses/117020586019094258",
        "target_url": "http://localhost:3000/@mastodonpy_test/117020586019094258",
        "target_author_id": ACCT,
    },
    post("117020565966271181", "117020582925004921", ts="2026-08-01T13:53:10.824Z",
         author={"id": ACCT, "handle": ACCT, "followers": 0}, text="yoooooooo",
         url="http://localhost:3000/@mastodonpy_test/117020582925004921", lang="en",
         quote_of=f"mastodon:{U}/117020565966271181/statuses/117020582917124092",
         quote_of_author_id=ACCT),
    post("117020566092212359", "117020593741189701", ts="2026-08-01T13:55:55.867Z",
         author={"id": "mastodonpy_test_2@localhost", "handle": "mastodonpy_test_2@localhost", "followers": 0},
         text="#hoot (hashtag toot)", url="http://localhost:3000/@mastodonpy_test_2/117020593741189701",
         lang="ja", hashtags=["hoot"]),
    {
        "kind": "reaction", "v": 1, "platform": "mastodon", "ts": "2026-08-01T13:52:30.000Z",
        "id": f"mastodon:{U}/117020565966271181/statuses/117020579695730951#favourited_by/mastodonpy_test_2@localhost",
        "author": {"id": "mastodonpy_test_2@localhost", "handle": "mastodonpy_test_2@localhost", "followers": 0},
        "target": f"mastodon:{U}/117020565966271181/statuses/117020579695730951",
        "target_author_id": ACCT, "reaction": "like",
    },
]  # fmt: skip


def as_dicts(events: list[Any]) -> list[dict[str, Any]]:
    return [strip_ingested(orjson.loads(encode_event(e))) for e in events]


# --- parsing ---------------------------------------------------------------------------


def test_fixture_messages_map_to_expected_events() -> None:
    got: list[Any] = []
    seen: set[str] = set()
    for block in fixture_blocks():
        for ev in parse_sse_event(block):
            if ev.id not in seen:  # what the source's de-duplication does
                seen.add(ev.id)
                got.append(ev)
    assert as_dicts(got) == EXPECTED


def test_status_update_is_the_same_post_id_and_delete_is_skipped() -> None:
    blocks = split_sse_messages(USER_SSE.read_bytes())
    assert all(isinstance(parse_sse_event(b), list) for b in blocks)  # none raises
    update = next(b for b in blocks if b"event: status.update" in b)
    (edited,) = parse_sse_event(update)
    assert edited.id == EXPECTED[0]["id"] and edited.text == "only real animals respond."
    delete = next(b for b in blocks if b"event: delete" in b)
    assert parse_sse_event(delete) == []


def test_direct_messages_and_conversations_are_never_ingested() -> None:
    blocks = split_sse_messages(USER_SSE.read_bytes()) + split_sse_messages(DIRECT_SSE.read_bytes())
    texts = [ev.text for b in blocks for ev in parse_sse_event(b)]
    assert not any("pssssst" in t for t in texts)


def test_html_to_text_skips_mentions_hashtags_and_quote_marker_links() -> None:
    quote = load("mastodonpy_status_with_quote.json")["content"]
    assert html_to_text(quote) == ("yoooooooo", [])
    text, links = html_to_text(
        '<p>Hi <a href="https://acme.com/p/1" rel="nofollow">acme.com/p/1</a><br>line</p><p>two</p>'
    )
    assert text == "Hi acme.com/p/1\nline\n\ntwo"
    assert links == ["https://acme.com/p/1"]


def test_reply_resolution_and_reply_author_from_mentions() -> None:
    note = json.loads(
        parse_block_data(
            next(b for b in split_sse_messages(USER_SSE.read_bytes()) if b"pssssst!" in b)
        )
    )
    status = copy.deepcopy(note["status"])
    status["visibility"] = "public"
    uris = {"117024236559579118": f"{U}/117020617404561855/statuses/117024236559579118"}
    (ev,) = status_events(status, "x", uris.get)
    assert ev.reply_to == f"mastodon:{uris['117024236559579118']}"
    assert ev.reply_to_author_id == ACCT  # the parent's author, found among the mentions
    (unresolved,) = status_events(status, "x", {}.get)
    assert unresolved.reply_to is None and unresolved.reply_to_author_id == ACCT


def parse_block_data(block: bytes) -> str:
    return next(ln[6:] for ln in block.decode().splitlines() if ln.startswith("data: "))


def test_boost_notification_and_boost_status_share_one_id() -> None:
    wrapper = load("mastodonpy_status_reblog_response.json")
    (from_stream,) = status_events(wrapper, "x")
    note = {"id": "9", "type": "reblog", "created_at": wrapper["created_at"],
            "account": wrapper["account"], "status": wrapper["reblog"]}  # fmt: skip
    (from_note,) = notification_events(note, "x")
    assert from_stream.id == from_note.id
    assert as_dicts([from_stream]) == as_dicts([from_note])


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        (b"event: update\ndata: {broken", "invalid_json"),
        (
            b'event: update\ndata: {"uri":"u","content":"","created_at":"2026-01-01T00:00:00Z"}',
            "missing_field",
        ),
        (
            b'event: update\ndata: {"uri":"u","account":{"acct":"a"},"created_at":"yesterday"}',
            "invalid_ts",
        ),
        (b"event: notification\ndata: []", "wrong_type"),
    ],
)
def test_malformed_payloads_raise_with_reason(block: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as err:
        parse_sse_event(block)
    assert err.value.reason == reason


def test_full_acct_and_streams() -> None:
    assert full_acct({"acct": "Ann", "url": "https://m.example/@Ann"}) == "ann@m.example"
    assert full_acct({"acct": "bob@other.social"}) == "bob@other.social"
    assert stream_spec("hashtag:#AcmeShoes").params == {"tag": "acmeshoes"}
    assert stream_spec("public:local").timeline_params == {"local": "true"}
    with pytest.raises(ValueError):
        stream_spec("firehose")
    cfg = Config(brands=[Brand(name="a", hashtags=["AcmeShoes"])])
    assert [s.key for s in MastodonSource(cfg, {}).specs] == ["hashtag:acmeshoes"]
    cfg = Config(brands=[Brand(name="a", hashtags=["AcmeShoes"], terms=["acme"])])
    assert [s.key for s in MastodonSource(cfg, {}).specs] == ["hashtag:acmeshoes", "public"]
    assert [s.key for s in MastodonSource(Config(), {}).specs] == ["public"]


# --- a local Mastodon ----------------------------------------------------------------------


@dataclass
class FakeMastodon:
    """Streaming (SSE) + timelines + status lookup, like a Mastodon server."""

    connections: list[list[bytes]]  # what each successive stream connection sends
    drop: list[bool]  # abort the TCP connection after sending (else stay open)
    timeline: list[dict[str, Any]] = field(default_factory=list)  # ascending ids
    lookup: dict[str, dict[str, Any]] = field(default_factory=dict)
    token: str | None = None
    refuse_429: int = 0
    retry_after: str = "1"
    stream_attempts: list[float] = field(default_factory=list)
    timeline_queries: list[dict[str, str]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    served: int = 0  # stream connections answered with 200
    port: int = 0

    def _auth(self, request: web.Request) -> None:
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            raise web.HTTPUnauthorized(text='{"error":"The access token is invalid"}')

    async def stream(self, request: web.Request) -> web.StreamResponse:
        self.stream_attempts.append(time.monotonic())
        self._auth(request)
        if self.refuse_429 > 0:
            self.refuse_429 -= 1
            return web.json_response({"error": "Too many requests"}, status=429,
                                     headers={"Retry-After": self.retry_after})  # fmt: skip
        n, self.served = self.served, self.served + 1
        blocks = self.connections[n] if n < len(self.connections) else []
        drop = self.drop[n] if n < len(self.drop) else False
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b":)\n")
        for block in blocks:
            await resp.write(block + b"\n\n")
            await resp.write(b":thump\n\n")
        if drop:
            assert request.transport is not None
            request.transport.abort()
            return resp
        with contextlib.suppress(ConnectionResetError):  # the client left
            while request.transport is not None and not request.transport.is_closing():
                await asyncio.sleep(0.2)
                await resp.write(b":thump\n\n")  # Mastodon's heartbeat
        return resp

    async def timelines(self, request: web.Request) -> web.Response:
        self._auth(request)
        self.timeline_queries.append(dict(request.query))
        min_id = int(request.query.get("min_id", "0"))
        limit = int(request.query.get("limit", "20"))
        newer = [s for s in self.timeline if int(s["id"]) > min_id][:limit]
        return web.json_response(list(reversed(newer)))  # newest first, like Mastodon

    async def status(self, request: web.Request) -> web.Response:
        sid = request.match_info["id"]
        self.lookups.append(sid)
        if sid not in self.lookup:
            return web.json_response({"error": "Record not found"}, status=404)
        return web.json_response(self.lookup[sid])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def start(fake: FakeMastodon) -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/api/v1/streaming/{name:.*}", fake.stream)
    app.router.add_get("/api/v1/timelines/{name:.*}", fake.timelines)
    app.router.add_get("/api/v1/statuses/{id}", fake.status)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner


def fast(url: str, **extra: Any) -> dict[str, Any]:
    return {"url": url, "batch_linger_ms": 20, "backoff_initial_seconds": 0.01,
            "backoff_max_seconds": 0.05, **extra}  # fmt: skip


def synthetic(n: int) -> list[dict[str, Any]]:
    """``n`` public #hoot statuses with growing ids, cloned from the recorded one."""
    base = load("mastodonpy_hashtag_timeline.json")[0]
    out = []
    for i in range(n):
        s = copy.deepcopy(base)
        sid = str(117020593741189701 + i * 1000)
        s["id"] = sid
        s["uri"] = f"{U}/117020566092212359/statuses/{sid}"
        s["url"] = f"http://localhost:3000/@mastodonpy_test_2/{sid}"
        s["created_at"] = f"2026-08-01T14:{i // 60:02d}:{i % 60:02d}.000Z"
        s["content"] = (
            f'<p><a href="http://localhost:3000/tags/hoot" class="mention hashtag" rel="tag">#<span>hoot</span></a> number {i}</p>'
        )
        out.append(s)
    return out


async def test_user_stream_fixtures_into_kafka_exactly(
    stack: Any, namespace: str, cursor_store: CursorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", "test-token-123")
    fake = FakeMastodon([fixture_blocks()], [False], token="test-token-123")
    runner = await start(fake)
    try:
        src = MastodonSource(Config(), fast(fake.url, streams=["user"]))
        await run_until(src, stack.bootstrap, namespace, cursor_store,
                        lambda s: s.events >= len(EXPECTED))  # fmt: skip
    finally:
        await runner.cleanup()
    records = await read_topic(stack.bootstrap, f"{namespace}.events", len(EXPECTED))
    got = sorted((strip_ingested(r.json()) for r in records), key=lambda e: e["id"])
    assert got == sorted(EXPECTED, key=lambda e: e["id"])
    for rec in records:
        ev = rec.json()
        assert rec.key == (ev["id"] if ev["kind"] == "post" else ev["target"]).encode()
    # The cursor is the newest timeline id of an ``update`` (the single-update fixture's).
    assert cursor_store.load("mastodon") == {"streams": {"user": "117024248092393661"}}


async def test_drop_mid_stream_backfills_gap_without_duplicates(
    stack: Any, namespace: str, cursor_store: CursorStore
) -> None:
    statuses = synthetic(30)
    statuses[12]["in_reply_to_id"] = statuses[3]["id"]  # a reply to a status seen before
    statuses[12]["in_reply_to_account_id"] = statuses[3]["account"]["id"]
    statuses[25]["in_reply_to_id"] = "4242"  # to a status only the lookup API knows
    parent = copy.deepcopy(statuses[0]) | {"id": "4242", "uri": f"{U}/1/statuses/4242"}
    fake = FakeMastodon(
        [[sse("update", s) for s in statuses[:10]], [sse("update", s) for s in statuses[20:]]],
        [True, False],
        timeline=statuses,  # 10..19 were published while we were away
        lookup={"4242": parent},
    )
    runner = await start(fake)
    try:
        src = MastodonSource(Config(), fast(fake.url, streams=["hashtag:hoot"]))
        await run_until(src, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 30)
    finally:
        await runner.cleanup()
    got = [r.json() for r in await read_topic(stack.bootstrap, f"{namespace}.events", 30)]
    ids = [e["id"] for e in got]
    assert len(ids) == len(set(ids)), "duplicate ids"
    assert sorted(ids) == sorted(f"mastodon:{s['uri']}" for s in statuses), "gap"
    assert fake.timeline_queries[0]["min_id"] == statuses[9]["id"]
    assert len(fake.stream_attempts) == 2 and src.metrics.reconnects == 1
    by_id = {e["id"]: e for e in got}
    assert by_id[f"mastodon:{statuses[12]['uri']}"]["reply_to"] == f"mastodon:{statuses[3]['uri']}"
    assert (
        by_id[f"mastodon:{statuses[12]['uri']}"]["reply_to_author_id"]
        == "mastodonpy_test_2@localhost"
    )
    assert by_id[f"mastodon:{statuses[25]['uri']}"]["reply_to"] == f"mastodon:{U}/1/statuses/4242"
    assert fake.lookups == ["4242"]
    assert cursor_store.load("mastodon") == {"streams": {"hashtag:hoot": statuses[-1]["id"]}}


async def test_restart_backfills_from_durable_cursor(
    stack: Any, namespace: str, cursor_store: CursorStore
) -> None:
    statuses = synthetic(12)
    cursor_store.save("mastodon", {"streams": {"public": statuses[4]["id"]}})
    fake = FakeMastodon([[]], [False], timeline=statuses)
    runner = await start(fake)
    try:
        src = MastodonSource(Config(), fast(fake.url, streams=["public"]),
                             cursor=cursor_store.load("mastodon"))  # fmt: skip
        await run_until(src, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 7)
    finally:
        await runner.cleanup()
    got = [r.json()["id"] for r in await read_topic(stack.bootstrap, f"{namespace}.events", 7)]
    assert sorted(got) == sorted(f"mastodon:{s['uri']}" for s in statuses[5:])


async def test_429_retry_after_is_honoured(
    stack: Any, namespace: str, cursor_store: CursorStore
) -> None:
    statuses = synthetic(3)
    fake = FakeMastodon([[sse("update", s) for s in statuses]], [False], refuse_429=1)
    runner = await start(fake)
    try:
        src = MastodonSource(Config(), fast(fake.url, streams=["public"]))
        await run_until(src, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 3)
    finally:
        await runner.cleanup()
    waited = fake.stream_attempts[1] - fake.stream_attempts[0]
    assert 0.95 <= waited < 3, waited
    assert src.metrics.rate_limited_waits == 1


async def test_malformed_message_goes_to_dlq_and_stream_goes_on(
    stack: Any, namespace: str, cursor_store: CursorStore
) -> None:
    statuses = synthetic(4)
    broken = b"event: update\ndata: {broken"
    no_account = copy.deepcopy(statuses[0])
    del no_account["account"]
    blocks = [sse("update", statuses[0]), broken, sse("update", statuses[1]),
              sse("update", no_account | {"uri": "x"}), sse("update", statuses[2]),
              sse("update", statuses[3])]  # fmt: skip
    fake = FakeMastodon([blocks], [False])
    runner = await start(fake)
    try:
        src = MastodonSource(Config(), fast(fake.url, streams=["public"]))
        await run_until(src, stack.bootstrap, namespace, cursor_store,
                        lambda s: s.events >= 4 and s.rejected >= 2)  # fmt: skip
    finally:
        await runner.cleanup()
    dlq = await read_topic(stack.bootstrap, f"{namespace}.dlq", 2)
    assert {r.value: r.headers["ripple-reason"] for r in dlq} == {
        broken: b"invalid_json",
        blocks[3]: b"missing_field",
    }
    assert {r.headers["ripple-source"] for r in dlq} == {b"mastodon"}
    got = [r.json()["id"] for r in await read_topic(stack.bootstrap, f"{namespace}.events", 4)]
    assert sorted(got) == sorted(f"mastodon:{s['uri']}" for s in statuses)


async def test_client_filter_keeps_tracked_posts_and_their_boosts() -> None:
    config = Config(brands=[Brand(name="a", hashtags=["hoot"], terms=["toot"])])
    src = MastodonSource(config, {"streams": ["public"]})
    assert src._filtering
    hoot = load("mastodonpy_hashtag_timeline.json")[0]
    boost_of_tracked = copy.deepcopy(load("mastodonpy_status_reblog_response.json"))
    boost_of_tracked["reblog"]["content"] = "<p>a toot about things</p>"
    untracked = load("mastodonpy_status_with_quote.json")  # "yoooooooo"
    kept = []
    for status in (hoot, boost_of_tracked, untracked):
        raw = orjson.dumps(status)
        item = await src._parse("public", "update", raw, raw)
        kept += [ev.id for ev in item.events if src._keep(ev)]
    assert kept == [
        f"mastodon:{hoot['uri']}",
        f"mastodon:{boost_of_tracked['reblog']['uri']}#reblogged_by/{ACCT}",
    ]


async def test_cli_streams_into_namespace(stack: Any, namespace: str, tmp_path: Any) -> None:
    statuses = synthetic(5)
    fake = FakeMastodon([[sse("update", s) for s in statuses]], [False])
    runner = await start(fake)
    try:
        records, out = await run_cli_until(
            "mastodon", fake.url, stack.config_path, namespace, tmp_path / "c", stack.bootstrap, 5,
            env={"MASTODON_ACCESS_TOKEN": "secret-token-xyz"}, extra=["--set", 'streams=["public"]'],
        )  # fmt: skip
    finally:
        await runner.cleanup()
    assert sorted(r.json()["id"] for r in records) == sorted(
        f"mastodon:{s['uri']}" for s in statuses
    )
    assert "secret-token-xyz" not in out  # credentials are never logged
