"""Reddit: listing parsing (table-driven, real praw recordings) and the polling source
against a local server that speaks Reddit's listing protocol, into the real broker."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web
from ingest_helpers import read_topic, run_until, strip_ingested
from replay_http import Fault, ReplayServer

from ingest.config import Brand, Config, ConfigError
from ingest.events import InvalidEvent, encode_event
from ingest.producer import DLQ_REASON, DLQ_SOURCE
from ingest.sources.base import Rejected
from ingest.sources.polling import pacing_delay
from ingest.sources.reddit import RedditSource, search_queries
from ingest.sources.reddit_parse import parse_listing

FIXTURES = Path("/work/shared/fixtures/reddit")
if not FIXTURES.exists():  # the repo's sibling checkout
    FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "reddit"
NEW = FIXTURES / "listing_t3_r_askreddit_new_2016-03-01.json"
COMMENTS = FIXTURES / "listing_t1_r_TESTSUB_comments_2023-10-08.json"
POPULAR = FIXTURES / "listing_t3_r_popular_hot_2026-04-13.json"
TREE = FIXTURES / "comments_page_t3_plus_t1_jlbw48_2022-04-03.json"
NOW = 1800000000.0  # 2027-01-15T08:00:00Z
CLIENT_ID, CLIENT_SECRET, TOKEN = "test-client-id", "s3cr3t-value-xyz", "tok-abc-123"


def _event(data: bytes, event_id: str) -> dict[str, Any]:
    events = {e.id: e for e in parse_listing(data, NOW).events}
    return json.loads(encode_event(events[event_id]))


def _post(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": "post", "v": 1, "platform": "reddit", "ingested_at": "2027-01-15T08:00:00.000Z",
        "lang": None, "hashtags": [], "links": [], "reply_to": None, "reply_to_author_id": None,
        "quote_of": None, "quote_of_author_id": None,
    }  # fmt: skip
    base.update(fields)
    return base


def _author(name: str) -> dict[str, Any]:
    return {"id": name, "handle": name, "followers": None}


# --- parsing ----------------------------------------------------------------------------

PARSE_CASES = [
    pytest.param(
        NEW, "reddit:t3_48fbm9",
        _post(
            id="reddit:t3_48fbm9", ts="2016-03-01T08:37:38.000Z", author=_author("RedHeadQc"),
            text="[Serious] Parents of Reddit, what's the biggest lie about yourself you've told your kids?",
            url="https://www.reddit.com/r/AskReddit/comments/48fbm9/serious_parents_of_reddit_whats_the_biggest_lie/",
        ),
        id="t3-self-post-2016",
    ),
    pytest.param(
        POPULAR, "reddit:t3_1skjxta",
        _post(
            id="reddit:t3_1skjxta", ts="2026-04-13T18:44:08.000Z", author=_author("airplane231"),
            text=(
                "Ulberg on Jiri showing mercy: \u201cThat\u2019s bullshit, total bullshit. "
                "That\u2019s fear. There was no mercy in there. He was full of fear, hesitation, "
                "and that\u2019s what got him clipped. I think he\u2019s a pretender...That was "
                "his excuse so that he could hopefully get a rematch. There is no way he gets "
                "that rematch.\u201d\n\nhttps://x.com/arielhelwani/status/2043757261882044451"
            ),
            url="https://www.reddit.com/r/MMA/comments/1skjxta/ulberg_on_jiri_showing_mercy_thats_bullshit_total/",
            links=["https://streamable.com/ql7tuy", "https://x.com/arielhelwani/status/2043757261882044451"],
        ),
        id="t3-link-post-with-selftext-link",
    ),
    pytest.param(
        COMMENTS, "reddit:t1_k3yrfii",
        _post(
            id="reddit:t1_k3yrfii", ts="2023-10-08T08:46:08.000Z",
            author=_author("Acceptable-Bread-566"), text="Did it work?",
            url="https://www.reddit.com/r/<TEST_SUBREDDIT>/comments/agi5zf/<TEST_SUBREDDIT>/k3yrfii/",
            reply_to="reddit:t1_k3u4rtt",
        ),
        id="t1-nested-reply-parent-author-unknown",
    ),
    pytest.param(
        COMMENTS, "reddit:t1_k3ynm7c",
        _post(
            id="reddit:t1_k3ynm7c", ts="2023-10-08T07:56:18.000Z",
            author=_author("Innsmouth_Swim_Team"),
            text="Hey u/VettedBot what can you tell me about the Cricket Dream 5G phone?",
            url="https://www.reddit.com/r/<TEST_SUBREDDIT>/comments/172thsp/bot_<TEST_SUBREDDIT>/k3ynm7c/",
            reply_to="reddit:t3_172thsp", reply_to_author_id="Innsmouth_Swim_Team",
        ),
        id="t1-top-level-link-author",
    ),
    pytest.param(
        COMMENTS, "reddit:t1_k3ynwqb",
        _post(
            id="reddit:t1_k3ynwqb", ts="2023-10-08T08:00:11.000Z",
            author=_author("Innsmouth_Swim_Team"),
            text="Hey u/VettedBot what can you tell me about https://www.amazon.com/AT-Prepaid-Radiant-Max-Smartphone/dp/B098KJWTXL",
            url="https://www.reddit.com/r/<TEST_SUBREDDIT>/comments/172thsp/bot_<TEST_SUBREDDIT>/k3ynwqb/",
            links=["https://www.amazon.com/AT-Prepaid-Radiant-Max-Smartphone/dp/B098KJWTXL"],
            reply_to="reddit:t1_k3ynm7c",
        ),
        id="t1-link-from-body-html",
    ),
    pytest.param(
        TREE, "reddit:t1_gao5889",
        _post(
            id="reddit:t1_gao5889", ts="2020-10-31T03:59:59.000Z",
            author=_author("Watchful1BotTest"), text="test comment",
            url="https://www.reddit.com/r/SubTestBot1/comments/jlbw48/test_self_post/gao5889/",
            reply_to="reddit:t3_jlbw48", reply_to_author_id="Watchful1BotTest",
        ),
        id="comments-tree-top-level-knows-submission-author",
    ),
    pytest.param(
        TREE, "reddit:t1_gt032vq",
        _post(
            id="reddit:t1_gt032vq", ts="2021-04-01T06:06:10.000Z", author=_author("KJ_Bot"),
            text=(
                "Watchful1 mentions kids in 0 posts and 4 comments.\n        \n        "
                "Sentiment of relevant posts and comments:\n        Negative: 0\n        "
                "Neutral: 0\n        Positive: 4"
            ),
            url="https://www.reddit.com/r/SubTestBot1/comments/jlbw48/test_self_post/gt032vq/",
            reply_to="reddit:t1_gt00mip", reply_to_author_id="wapisagoodsong",
        ),
        id="comments-tree-nested-reply-knows-parent-author",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("fixture", "event_id", "expected"), PARSE_CASES)
def test_parse_fixture_item(fixture: Path, event_id: str, expected: dict[str, Any]) -> None:
    assert _event(fixture.read_bytes(), event_id) == expected


@pytest.mark.parametrize(
    ("fixture", "count"), [(NEW, 100), (COMMENTS, 100), (POPULAR, 100), (TREE, 7)]
)
def test_parse_whole_fixture(fixture: Path, count: int) -> None:
    parsed = parse_listing(fixture.read_bytes(), NOW)
    assert len(parsed.events) == count and parsed.rejected == []
    ids = [e.id for e in parsed.events]
    assert len(set(ids)) == count
    assert all(i.startswith(("reddit:t3_", "reddit:t1_")) for i in ids)
    for ev in parsed.events:
        assert ev.ts.endswith("Z") and ev.author.followers is None  # type: ignore[union-attr]
        if ev.id.startswith("reddit:t1_"):
            assert ev.reply_to and ev.reply_to.startswith(("reddit:t1_", "reddit:t3_"))  # type: ignore[union-attr]


def test_parse_cursor_fields() -> None:
    parsed = parse_listing(NEW.read_bytes(), NOW)
    assert parsed.after == "t3_48f6io" and parsed.before is None
    assert [i.name for i in parsed.items][:2] == ["t3_48fbm9", "t3_48fbig"]


def _listing(*children: dict[str, Any] | bytes) -> bytes:
    parts = [c if isinstance(c, bytes) else json.dumps(c).encode() for c in children]
    return (
        b'{"kind":"Listing","data":{"after":null,"before":null,"children":['
        + b",".join(parts)
        + b"]}}"
    )


def _child(path: Path, index: int) -> dict[str, Any]:
    return json.loads(path.read_bytes())["data"]["children"][index]


def test_crosspost_is_a_reshare() -> None:
    child = _child(POPULAR, 1)
    child["data"]["crosspost_parent"] = "t3_abc123"
    child["data"]["crosspost_parent_list"] = [
        {"name": "t3_abc123", "author": "origin_user", "permalink": "/r/x/comments/abc123/t/"}
    ]
    (ev,) = parse_listing(_listing(child), NOW).events
    assert json.loads(encode_event(ev)) == {
        "kind": "reshare", "v": 1, "id": "reddit:" + child["data"]["name"], "platform": "reddit",
        "ts": ev.ts, "ingested_at": "2027-01-15T08:00:00.000Z",
        "author": _author(child["data"]["author"]), "target": "reddit:t3_abc123",
        "target_url": "https://www.reddit.com/r/x/comments/abc123/t/",
        "target_author_id": "origin_user",
    }  # fmt: skip


def test_hashtags_and_deleted_author() -> None:
    child = _child(COMMENTS, 0)
    child["data"].update(
        author="[deleted]", body="Love my new #AcmeShoes! #1 #acmeshoes", body_html=None
    )
    (ev,) = parse_listing(_listing(child), NOW).events
    assert ev.hashtags == ["acmeshoes"]  # type: ignore[union-attr]
    assert ev.author.id == "[deleted]" and ev.author.handle is None  # type: ignore[union-attr]


MALFORMED_CHILDREN = [
    pytest.param({"data": {"created_utc": "yesterday"}}, "wrong_type", id="wrong-type"),
    pytest.param({"data": {"author": None}}, "wrong_type", id="null-author"),
    pytest.param({"drop": "author"}, "missing_field", id="missing-author"),
]


@pytest.mark.parametrize(("change", "reason"), MALFORMED_CHILDREN)
def test_malformed_child_is_rejected_with_its_bytes(change: dict[str, Any], reason: str) -> None:
    bad = _child(NEW, 0)
    if "drop" in change:
        del bad["data"][change["drop"]]
    else:
        bad["data"].update(change["data"])
    bad_bytes = json.dumps(bad).encode()
    parsed = parse_listing(_listing(bad_bytes, _child(NEW, 1)), NOW)
    assert [e.id for e in parsed.events] == ["reddit:t3_48fbig"]
    (rej,) = parsed.rejected
    assert isinstance(rej, Rejected) and rej.reason == reason and rej.raw == bad_bytes
    assert parsed.items[0].name == "t3_48fbm9"  # still known, so it is not fetched again


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"kind": "Listing", "data": {"children": [', "invalid_json"),
        (b'{"error": 500}', "bad_payload"),
    ],
)
def test_malformed_body_raises(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_listing(body, NOW)
    assert info.value.reason == reason


def test_search_queries_split_at_reddit_limit() -> None:
    clauses = ['"acme shoes"', "acme", "site:acme.com"] + [f"term{i:03d}" for i in range(80)]
    queries = search_queries(clauses, limit=120)
    assert all(len(q) <= 120 for q in queries)
    assert " OR ".join(queries).split(" OR ") == clauses


def test_pacing_from_ratelimit_headers() -> None:
    assert (
        pacing_delay(
            {"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "7", "X-Ratelimit-Used": "100"}
        )
        == 7
    )
    assert pacing_delay({"X-Ratelimit-Remaining": "4", "X-Ratelimit-Reset": "20"}) == 5
    assert pacing_delay({"X-Ratelimit-Remaining": "590", "X-Ratelimit-Reset": "20"}) == 0
    assert pacing_delay({"Retry-After": "3"}) == 3
    assert pacing_delay({}) == 0


def test_missing_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDDIT_CLIENT_ID", raising=False)
    monkeypatch.delenv("REDDIT_CLIENT_ID_FILE", raising=False)
    with pytest.raises(ConfigError, match="REDDIT_CLIENT_ID"):
        RedditSource(Config(), {"subreddits": ["x"]})


# --- a local Reddit ---------------------------------------------------------------------


class FakeReddit:
    """Reddit's listing protocol over the recorded children: ``before``/``after`` anchors,
    ``limit``, newest first; OAuth client-credentials tokens; rate-limit headers."""

    def __init__(self) -> None:
        self.server = ReplayServer()
        self.streams: dict[str, list[bytes]] = {}  # newest first, raw child JSON
        self.names: dict[str, list[str]] = {}
        self.extra_headers: dict[str, str] = {}
        self.token_value = TOKEN  # what the token endpoint hands out and listings accept
        self.server.route("POST", "/api/v1/access_token", self.token)
        self.server.route("GET", "/r/{subs}/{kind}", self.listing)
        self.server.route("GET", "/search", self.listing)

    def release(self, stream: str, children: list[bytes]) -> None:
        """Make items visible (given newest first, all newer than what is there)."""
        self.streams[stream] = children + self.streams.get(stream, [])
        self.names[stream] = [msgspec.json.decode(c)["data"]["name"] for c in self.streams[stream]]

    async def token(self, request: web.Request) -> web.Response:
        import base64

        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        form = await request.post()
        if (
            request.headers.get("Authorization") != expected
            or form.get("grant_type") != "client_credentials"
        ):
            return web.json_response({"error": "invalid_grant"}, status=401)
        return web.json_response(
            {"access_token": self.token_value, "token_type": "bearer", "expires_in": 86400}
        )

    async def listing(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token_value}":
            return web.json_response({"message": "Unauthorized", "error": 401}, status=401)
        stream = "search" if request.path == "/search" else request.match_info["kind"]
        items, names = self.streams.get(stream, []), self.names.get(stream, [])
        limit = int(request.query.get("limit", "25"))
        before, after = request.query.get("before"), request.query.get("after")
        if before:
            i = names.index(before) if before in names else 0
            lo = max(0, i - limit)
        elif after:
            lo = names.index(after) + 1 if after in names else len(names)
        else:
            lo = 0
        hi = i if before else min(len(items), lo + limit)
        page = items[lo:hi]
        data = {
            "after": names[hi - 1] if page and hi < len(items) else None,
            "before": names[lo] if page and lo > 0 else None,
            "dist": len(page), "modhash": None, "geo_filter": "",
            "children": "@@CHILDREN@@",
        }  # fmt: skip
        body = json.dumps({"kind": "Listing", "data": data}).encode()
        body = body.replace(b'"@@CHILDREN@@"', b"[" + b",".join(page) + b"]")
        headers = {
            "X-Ratelimit-Remaining": "590.0",
            "X-Ratelimit-Used": "10",
            "X-Ratelimit-Reset": "300",
        }
        headers.update(self.extra_headers)
        return web.Response(body=body, content_type="application/json", headers=headers)


def _children(path: Path) -> list[bytes]:
    """The listing's children as their own JSON bytes, newest first (as recorded)."""
    raw = msgspec.json.decode(path.read_bytes(), type=dict[str, Any])
    return [json.dumps(c).encode() for c in raw["data"]["children"]]


def _expected(children: list[bytes]) -> dict[str, dict[str, Any]]:
    events = parse_listing(_listing(*children), NOW).events
    return {e.id: strip_ingested(json.loads(encode_event(e))) for e in events}


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDDIT_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", CLIENT_SECRET)


@pytest.fixture
async def reddit() -> Any:
    fake = FakeReddit()
    await fake.server.start()
    yield fake
    await fake.server.stop()


def _settings(fake: FakeReddit, **over: Any) -> dict[str, Any]:
    base = {
        "url": fake.server.url, "subreddits": ["askreddit"], "listings": ["new"],
        "poll_seconds": 0.05, "limit": 25, "backfill_pages": 10, "retry_initial_seconds": 0.05,
        "retry_max_seconds": 0.2,
    }  # fmt: skip
    base.update(over)
    return base


async def _events(stack: Any, ns: str, n: int) -> list[dict[str, Any]]:
    return [r.json() for r in await read_topic(stack.bootstrap, f"{ns}.events", n)]


def _assert_exact(got: list[dict[str, Any]], expected: dict[str, dict[str, Any]]) -> None:
    ids = [e["id"] for e in got]
    assert len(ids) == len(set(ids)), "duplicate ids in Kafka"
    assert sorted(ids) == sorted(expected), "missing or extra ids"
    for ev in got:
        assert strip_ingested(ev) == expected[ev["id"]]


async def test_streams_listings_into_kafka_then_only_new_items(
    stack: Any, namespace: str, cursor_store: Any, reddit: FakeReddit, creds: None,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    posts, comments = _children(NEW), _children(COMMENTS)
    reddit.release("new", posts[40:])  # the 60 oldest submissions
    reddit.release("comments", comments)
    src = RedditSource(Config(), _settings(reddit, listings=["new", "comments"]))
    await run_until(src, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 160)
    reddit.release("new", posts[:40])  # 40 newer ones arrive: more than a page (limit 25)
    src2 = RedditSource(
        Config(), _settings(reddit, listings=["new", "comments"]), cursor_store.load("reddit")
    )
    await run_until(src2, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 40)

    _assert_exact(await _events(stack, namespace, 200), _expected(posts + comments))
    # Resumed with before=<newest seen>, paging forward; raw_json=1 and the token on every call.
    listing_calls = reddit.server.seen("/r/")
    assert all(
        r.query.get("raw_json") == "1" and r.query.get("limit") == "25" for r in listing_calls
    )
    newest_of_first_60 = json.loads(posts[40])["data"]["name"]
    assert any(r.query.get("before") == newest_of_first_60 for r in listing_calls)
    assert [r.path for r in reddit.server.seen("/api/")] == ["/api/v1/access_token"] * 2
    # Credentials never reach the logs.
    assert CLIENT_SECRET not in caplog.text and TOKEN not in caplog.text


async def test_dropped_connection_resumes_without_gap_or_duplicate(
    stack: Any, namespace: str, cursor_store: Any, reddit: FakeReddit, creds: None
) -> None:
    posts = _children(NEW)
    reddit.release("new", posts[50:])
    # The second listing request dies halfway through its body.
    calls = {"n": 0}

    def second_listing(req: web.Request) -> bool:
        calls["n"] += req.path.startswith("/r/")
        return calls["n"] == 2

    reddit.server.fault(Fault("drop"), second_listing)
    src = RedditSource(Config(), _settings(reddit))
    await run_until(src, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 50)
    assert src.metrics.reconnects >= 1
    assert any(r.fault == "drop" for r in reddit.server.requests)

    # A restart from the saved cursor, with a drop again on the way: only the 50 new ones.
    reddit.release("new", posts[:50])
    reddit.server.fault(Fault("drop"), lambda r: r.path.startswith("/r/") and "before" in r.query)
    src2 = RedditSource(Config(), _settings(reddit), cursor_store.load("reddit"))
    await run_until(src2, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 50)
    assert src2.metrics.reconnects >= 1
    _assert_exact(await _events(stack, namespace, 100), _expected(posts))


async def test_rate_limits_are_honoured(
    stack: Any, namespace: str, cursor_store: Any, reddit: FakeReddit, creds: None
) -> None:
    posts = _children(NEW)
    reddit.release("new", posts[60:])
    reddit.server.fault(
        Fault("status", 429, {"Retry-After": "1"}, b'{"message": "Too Many Requests"}'),
        lambda r: r.path.startswith("/r/"),
    )
    src = RedditSource(Config(), _settings(reddit))
    await run_until(src, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 40)
    calls = reddit.server.seen("/r/")
    assert calls[0].fault == "status"
    assert calls[1].at - calls[0].at >= 1.0  # Retry-After: 1 was waited out
    assert src.metrics.rate_limited_waits == 1

    # An exhausted quota (X-Ratelimit-Remaining: 0, Reset: 1) delays the next request.
    reddit.extra_headers = {
        "X-Ratelimit-Remaining": "0",
        "X-Ratelimit-Reset": "1",
        "X-Ratelimit-Used": "600",
    }
    reddit.release("new", posts[:60])
    before = len(reddit.server.seen("/r/"))
    src2 = RedditSource(Config(), _settings(reddit), cursor_store.load("reddit"))
    await run_until(src2, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 60)
    later = reddit.server.seen("/r/")[before:]
    assert len(later) >= 3  # 60 new at limit 25: three pages
    assert all(b.at - a.at >= 1.0 for a, b in zip(later, later[1:], strict=False))
    _assert_exact(await _events(stack, namespace, 100), _expected(posts))


async def test_malformed_payloads_go_to_the_dlq_and_polling_goes_on(
    stack: Any, namespace: str, cursor_store: Any, reddit: FakeReddit, creds: None
) -> None:
    posts = _children(NEW)
    bad_child = json.loads(posts[99])
    bad_child["data"]["created_utc"] = "yesterday"
    bad_bytes = json.dumps(bad_child).encode()
    reddit.release("new", [*posts[80:99], bad_bytes])
    truncated = b'{"kind": "Listing", "data": {"children": [{"kind": "t3", "da'
    reddit.server.fault(Fault("body", 200, {}, truncated), lambda r: r.path.startswith("/r/"))
    src = RedditSource(Config(), _settings(reddit))
    await run_until(
        src, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 19 and s.rejected >= 2
    )
    reddit.release("new", posts[:80])
    await run_until(src, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 80)

    dlq = await read_topic(stack.bootstrap, f"{namespace}.dlq", 2)
    by_reason = {r.headers[DLQ_REASON].decode(): r for r in dlq}
    assert sorted(by_reason) == ["invalid_json", "wrong_type"] and len(dlq) == 2
    assert by_reason["invalid_json"].value == truncated
    assert by_reason["wrong_type"].value == bad_bytes
    assert all(r.headers[DLQ_SOURCE] == b"reddit" for r in dlq)
    _assert_exact(await _events(stack, namespace, 99), _expected(posts[:99]))


async def test_search_for_tracked_terms(
    stack: Any, namespace: str, cursor_store: Any, reddit: FakeReddit, creds: None
) -> None:
    popular = _children(POPULAR)
    reddit.release("search", popular[:30])
    config = Config(
        brands=[Brand(name="acme", terms=["acme", "acme shoes"], hashtags=["acmeshoes"],
                      domains=["acme.com"], accounts={"reddit": ["acme_official"]})]
    )  # fmt: skip
    src = RedditSource(config, _settings(reddit, subreddits=[]))
    await run_until(src, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 30)
    (call, *_) = reddit.server.seen("/search")
    assert (
        call.query["q"]
        == 'acme OR "acme shoes" OR acmeshoes OR site:acme.com OR author:acme_official'
    )
    assert call.query["sort"] == "new" and call.query["raw_json"] == "1"
    _assert_exact(await _events(stack, namespace, 30), _expected(popular[:30]))


async def test_cli_streams_into_kafka(
    stack: Any, namespace: str, tmp_path: Path, reddit: FakeReddit, creds: None
) -> None:
    posts = _children(NEW)
    reddit.release("new", posts[:20])
    cmd = [
        "ingest", "reddit", "--config", str(stack.config_path), "--namespace", namespace,
        "--url", reddit.server.url, "--cursor-dir", str(tmp_path / "cur"),
        "--set", 'subreddits=["askreddit"]', "--set", 'listings=["new"]', "--set", "poll_seconds=0.2",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        str(Path(__file__).resolve().parents[3] / ".venv" / "bin" / "python"), "-c",
        "import argparse, sys; from deploy.commands import ingest; p = argparse.ArgumentParser(); "
        "ingest.register(p.add_subparsers(dest='command')); a = p.parse_args(sys.argv[1:]); "
        "sys.exit(a.func(a))",
        *cmd, stderr=asyncio.subprocess.PIPE, cwd=str(Path(__file__).resolve().parents[3]),
    )  # fmt: skip
    try:
        got = await _events(stack, namespace, 20)
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()[-2000:]
    _assert_exact(got, _expected(posts[:20]))
    assert CLIENT_SECRET.encode() not in err and TOKEN.encode() not in err
    assert json.loads((tmp_path / "cur" / "reddit.json").read_text())["cursor"]["listings"]


async def test_expired_token_is_renewed_and_from_now_skips_the_backlog(
    reddit: FakeReddit, creds: None
) -> None:
    """No broker needed: the source's own batches, straight from its iterator."""
    posts = _children(NEW)
    reddit.release("new", posts[10:])
    src = RedditSource(Config(), _settings(reddit, backfill_pages=0))
    batches = src.batches()
    try:
        first = await anext(batches)
        assert first.events == [] and first.rejected == []  # remembered, not emitted
        assert len(first.cursor["listings"]["r/askreddit/new"]["seen"]) == 25  # one page
        reddit.token_value = "tok-rotated"  # the old token now answers 401
        reddit.release("new", posts[:10])
        second = await anext(batches)
        assert [e.id for e in second.events] == [
            "reddit:" + json.loads(c)["data"]["name"] for c in reversed(posts[:10])
        ]
        assert [r.path for r in reddit.server.seen("/api/")] == ["/api/v1/access_token"] * 2
        assert 401 in [r.status for r in reddit.server.seen("/r/")]
    finally:
        await batches.aclose()
        await src.aclose()


async def test_failure_while_paging_forward_keeps_the_pages_before_it(
    reddit: FakeReddit, creds: None
) -> None:
    posts = _children(NEW)
    names = [json.loads(c)["data"]["name"] for c in posts]
    reddit.release("new", posts[60:])
    src = RedditSource(Config(), _settings(reddit))
    batches = src.batches()
    try:
        first = await anext(batches)
        assert [e.id for e in first.events] == ["reddit:" + n for n in reversed(names[60:])]
        reddit.release("new", posts[:60])  # 60 newer: three forward pages at limit 25
        forward = {"n": 0}

        def second_forward_page(req: web.Request) -> bool:
            forward["n"] += "before" in req.query
            return forward["n"] == 2

        reddit.server.fault(
            Fault("body", 200, {}, b"<html>upstream error</html>"), second_forward_page
        )
        second = await anext(batches)
        assert [e.id for e in second.events] == ["reddit:" + n for n in reversed(names[35:60])]
        assert [r.reason for r in second.rejected] == ["invalid_json"]
        third = await anext(batches)
        assert [e.id for e in third.events] == ["reddit:" + n for n in reversed(names[:35])]
    finally:
        await batches.aclose()
        await src.aclose()
