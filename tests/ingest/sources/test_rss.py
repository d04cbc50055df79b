"""RSS/Atom: feed parsing (table-driven, on the hand-written feeds in rss_fixtures/) and the
polling source against a local feed server with ETag/Last-Modified, into the real broker."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from ingest_helpers import read_topic, run_until, strip_ingested
from replay_http import Fault, ReplayServer

from ingest.config import Config, ConfigError
from ingest.events import InvalidEvent, encode_event
from ingest.producer import DLQ_REASON, DLQ_SOURCE
from ingest.sources.rss import RssSource
from ingest.sources.rss_parse import native_id, parse_feed

HERE = Path(__file__).resolve().parent
RSS = (HERE / "rss_fixtures" / "acme_blog.rss").read_bytes()
ATOM = (HERE / "rss_fixtures" / "acme_news.atom").read_bytes()
RSS_URL, ATOM_URL = "https://acme.example/blog/feed/", "https://news.example/shoes/atom.xml"
RSS_TYPE, ATOM_TYPE = "application/rss+xml; charset=UTF-8", "application/atom+xml"
NOW = 1800000000.0
INGESTED = "2027-01-15T08:00:00.000Z"


def _post(feed: str, handle: str | None, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": "post", "v": 1, "platform": "rss", "ingested_at": INGESTED,
        "author": {"id": feed, "handle": handle, "followers": None}, "hashtags": [],
        "reply_to": None, "reply_to_author_id": None, "quote_of": None, "quote_of_author_id": None,
    }  # fmt: skip
    base.update(fields)
    return base


RSS_EVENTS = [
    _post(
        RSS_URL, "Ann Walker", id="rss:https://acme.example/blog/?p=1042", ts="2026-11-20T10:15:03.000Z",
        text=(
            "Black Friday: 30% off every #AcmeShoes model\n\nOur biggest sale of the year starts now: "
            "every model is 30% off until Monday.\n\nSee the shop or read our sizing guide first. "
            "#AcmeBlackFriday"
        ),
        url="https://acme.example/blog/black-friday-2026/", lang="en-US",
        hashtags=["acmeshoes", "acmeblackfriday"],
        links=[
            "https://acme.example/blog/black-friday-2026/",
            "https://acme.example/shop/?utm_source=rss&utm_campaign=bf2026",
            "https://acme.example/blog/sizing-guide/",  # relative in the feed
        ],
    ),
    _post(
        RSS_URL, "Bo Chen", id="rss:https://acme.example/blog/how-we-make-part-2/",
        ts="2026-11-18T15:40:00.000Z",  # +0100 in the feed
        text="How we make a running shoe, part 2 \u2013 the sole\n\nRubber, foam & a lot of patience. Part 1 is here.",
        url="https://acme.example/blog/how-we-make-part-2/", lang="en-US",
        links=["https://acme.example/blog/how-we-make-part-2/", "https://acme.example/blog/how-we-make-part-1/"],
    ),
    _post(
        RSS_URL, None, id="rss:https://acme.example/blog/feed/#acme-open-day-2026",  # a bare guid
        ts="2026-11-16T08:00:00.000Z",
        text="Workshop open day\n\nCome and visit us on Saturday. Tickets: https://tickets.example/acme-open-day",
        url="https://acme.example/blog/open-day/", lang="en-US",
        links=["https://acme.example/blog/open-day/", "https://tickets.example/acme-open-day"],
    ),
    _post(
        RSS_URL, None, id="rss:https://acme.example/blog/podcast-12/",  # no guid: the link
        ts="2026-11-15T12:00:00.000Z", text="Podcast: episode 12\n\nOur designers on the new trail range.",
        url="https://acme.example/blog/podcast-12/", lang="en-US",
        links=["https://acme.example/blog/podcast-12/"],
    ),
]  # fmt: skip

ATOM_EVENTS = [
    _post(
        ATOM_URL, "Carla Mendes", id="rss:tag:news.example,2026:/shoes/1187", ts="2026-11-20T08:30:00.000Z",
        text=(
            "Acme and Zenith race for the marathon market\n\nBoth Acme and Zenith launch "
            "carbon-plated racers this winter.\n\nFans are posting under #MarathonShoes."
        ),
        url="https://news.example/shoes/2026/11/acme-zenith-marathon", lang="en",
        hashtags=["marathonshoes"],
        links=["https://news.example/shoes/2026/11/acme-zenith-marathon", "https://acme.example/", "https://zenith.example/run"],
    ),
    _post(
        ATOM_URL, "Shoe Desk", id="rss:tag:news.example,2026:/shoes/1186",  # the feed's author
        ts="2026-11-19T13:05:00.000Z",  # updated only, +01:00
        text="Acme er\u00f6ffnet Laden in Berlin\n\nDer erste Laden au\u00dferhalb der USA.",
        url="https://news.example/shoes/2026/11/acme-berlin", lang="de",
        links=["https://news.example/shoes/2026/11/acme-berlin"],
    ),
    _post(
        ATOM_URL, "Shoe Desk", id="rss:https://news.example/shoes/1185",  # relative <id> resolved
        ts="2026-11-18T07:00:00.000Z",
        text="Trail shoes & winter: a buyer\u2019s guide\n\nGrip matters more than weight. Our picks are at the picks page.",
        url="https://news.example/shoes/2026/11/trail-guide", lang="en",
        links=["https://news.example/shoes/2026/11/trail-guide", "https://news.example/shoes/picks"],
    ),
]  # fmt: skip


def _events_of(body: bytes, url: str, ctype: str) -> list[dict[str, Any]]:
    page = parse_feed(body, url, NOW, content_type=ctype)
    assert page.rejected == [] and page.broken is None
    return [json.loads(encode_event(e)) for e in page.events]


@pytest.mark.parametrize("index", range(4))
def test_parse_rss_entry(index: int) -> None:
    assert _events_of(RSS, RSS_URL, RSS_TYPE)[index] == RSS_EVENTS[index]


@pytest.mark.parametrize("index", range(3))
def test_parse_atom_entry(index: int) -> None:
    assert _events_of(ATOM, ATOM_URL, ATOM_TYPE)[index] == ATOM_EVENTS[index]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"id": "https://a.example/p/1", "link": "https://a.example/x"}, "https://a.example/p/1"),
        ({"id": "tag:a.example,2026:1"}, "tag:a.example,2026:1"),
        ({"id": "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a"}, "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a"),
        ({"id": "42", "link": "https://a.example/x"}, "https://f.example/feed#42"),
        ({"id": "acme:42"}, "https://f.example/feed#acme:42"),
        ({"link": "https://a.example/x"}, "https://a.example/x"),
        ({"title": "T", "published": "Mon, 16 Nov 2026 08:00:00 GMT"}, "https://f.example/feed#sha1:"),
        ({}, None),
    ],
)  # fmt: skip
def test_native_id(entry: dict[str, str], expected: str | None) -> None:
    got = native_id(entry, "https://f.example/feed")
    if expected and expected.endswith("sha1:"):
        assert got is not None and got.startswith(expected) and len(got) == len(expected) + 20
        assert got == native_id(dict(entry), "https://f.example/feed")  # stable
    else:
        assert got == expected


def test_undated_entry_takes_first_seen_time() -> None:
    body = b'<rss version="2.0"><channel><title>x</title><item><title>No date</title><link>https://a.example/n</link></item></channel></rss>'
    (ev,) = parse_feed(body, "https://a.example/feed", NOW, content_type="text/xml").events
    assert ev.ts == INGESTED and ev.id == "rss:https://a.example/n"


@pytest.mark.parametrize(
    ("body", "ctype", "reason"),
    [
        (b"<html><body><h1>Moved</h1></body></html>", "text/html", "bad_payload"),
        (b"\x00\x01 not xml at all {", "application/xml", "invalid_xml"),
        (b'{"items": []}', "application/json", "invalid_xml"),
    ],
)
def test_not_a_feed(body: bytes, ctype: str, reason: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_feed(body, RSS_URL, NOW, content_type=ctype)
    assert info.value.reason == reason


def test_broken_feed_is_salvaged_and_flagged() -> None:
    cut = RSS[: RSS.index(b"<item>", RSS.index(b"<item>") + 1) + 40]  # inside the 2nd item
    page = parse_feed(cut, RSS_URL, NOW, content_type=RSS_TYPE)
    assert page.broken
    assert [e.id for e in page.events][:1] == ["rss:https://acme.example/blog/?p=1042"]


def test_no_feeds_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="no feeds"):
        RssSource(Config(), {})


# --- a local feed server ------------------------------------------------------------------


class FakeFeeds:
    """Feeds by path, with ``ETag`` (a digest of the body) and ``Last-Modified``;
    ``If-None-Match`` / ``If-Modified-Since`` that still match get a 304, as servers do."""

    def __init__(self) -> None:
        self.server = ReplayServer()
        self.docs: dict[str, tuple[bytes, str, str]] = {}  # path -> (body, type, last-modified)
        self.server.route("GET", "/{path:.*}", self.serve)

    def put(self, path: str, body: bytes, ctype: str, modified: str) -> None:
        self.docs[path] = (body, ctype, modified)

    async def serve(self, request: web.Request) -> web.Response:
        body, ctype, modified = self.docs[request.path]
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        headers = {"ETag": etag, "Last-Modified": modified}
        if request.headers.get("If-None-Match") == etag or (
            "If-None-Match" not in request.headers
            and request.headers.get("If-Modified-Since") == modified
        ):
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, headers={**headers, "Content-Type": ctype})


def _updated_rss() -> bytes:
    """The blog a day later: two new posts on top, the oldest one gone."""
    new = b"""
    <item>
      <title>Cyber Monday: free shipping on #AcmeShoes</title>
      <link>https://acme.example/blog/cyber-monday-2026/</link>
      <dc:creator><![CDATA[Ann Walker]]></dc:creator>
      <pubDate>Mon, 23 Nov 2026 07:00:00 +0000</pubDate>
      <guid isPermaLink="false">https://acme.example/blog/?p=1050</guid>
      <description><![CDATA[<p>Free shipping all day. <a href="https://acme.example/shop/">Shop now</a>.</p>]]></description>
    </item>
    <item>
      <title>Sizing guide, updated</title>
      <link>https://acme.example/blog/sizing-guide/</link>
      <pubDate>Sat, 21 Nov 2026 09:30:00 +0000</pubDate>
      <guid isPermaLink="true">https://acme.example/blog/sizing-guide/</guid>
      <description>Half sizes are back.</description>
    </item>"""
    body = RSS.replace(b"</lastBuildDate>", b"</lastBuildDate>" + new, 1)
    start = body.index(b"<item>\n      <title>Podcast")
    return body[:start] + body[body.index(b"</item>", start) + len(b"</item>") :]


@pytest.fixture
async def feeds() -> Any:
    fake = FakeFeeds()
    await fake.server.start()
    fake.put("/blog/feed/", RSS, RSS_TYPE, "Fri, 20 Nov 2026 10:15:03 GMT")
    fake.put("/shoes/atom.xml", ATOM, ATOM_TYPE, "Fri, 20 Nov 2026 09:00:00 GMT")
    yield fake
    await fake.server.stop()


def _settings(fake: FakeFeeds, **over: Any) -> dict[str, Any]:
    base = {
        "feeds": [fake.server.url + "/blog/feed/", fake.server.url + "/shoes/atom.xml"],
        "poll_seconds": 0.05, "retry_initial_seconds": 0.05, "retry_max_seconds": 0.2,
    }  # fmt: skip
    base.update(over)
    return base


def _expected(fake: FakeFeeds, *docs: tuple[str, bytes, str]) -> dict[str, dict[str, Any]]:
    out = {}
    for path, body, ctype in docs:
        for ev in parse_feed(body, fake.server.url + path, NOW, content_type=ctype).events:
            out[ev.id] = strip_ingested(json.loads(encode_event(ev)))
    return out


def _assert_exact(got: list[dict[str, Any]], expected: dict[str, dict[str, Any]]) -> None:
    ids = [e["id"] for e in got]
    assert len(ids) == len(set(ids)), "duplicate ids in Kafka"
    assert sorted(ids) == sorted(expected), "missing or extra ids"
    for ev in got:
        assert strip_ingested(ev) == expected[ev["id"]]


async def _events(stack: Any, ns: str, n: int) -> list[dict[str, Any]]:
    return [r.json() for r in await read_topic(stack.bootstrap, f"{ns}.events", n)]


async def test_streams_feeds_then_304_then_only_new_entries(
    stack: Any, namespace: str, cursor_store: Any, feeds: FakeFeeds
) -> None:
    src = RssSource(Config(), _settings(feeds))
    requests = feeds.server.requests
    # Two polls: the first fetches both feeds, the second asks conditionally and gets 304s.
    await run_until(
        src, stack.bootstrap, namespace, cursor_store,
        lambda s: len(requests) >= 4 and s.checkpoints >= 2,  # both feeds' entries are in
    )  # fmt: skip
    # Each feed on its own schedule: look at each feed's own first two requests.
    paths = ("/blog/feed/", "/shoes/atom.xml")
    first = [next(r for r in requests if r.path == p) for p in paths]
    idle = [[r for r in requests if r.path == p][1] for p in paths]
    assert [r.status for r in first] == [200, 200] and [r.status for r in idle] == [304, 304]
    assert all(r.headers.get("If-None-Match") and r.headers.get("If-Modified-Since") for r in idle)
    before = len(requests)
    updated = _updated_rss()
    feeds.put("/blog/feed/", updated, RSS_TYPE, "Mon, 23 Nov 2026 07:00:00 GMT")
    src2 = RssSource(Config(), _settings(feeds), cursor_store.load("rss"))
    await run_until(src2, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 2)

    got = await _events(stack, namespace, 9)
    expected = _expected(
        feeds, ("/blog/feed/", RSS, RSS_TYPE), ("/shoes/atom.xml", ATOM, ATOM_TYPE)
    )
    expected |= _expected(feeds, ("/blog/feed/", updated, RSS_TYPE))
    _assert_exact(got, expected)
    assert {
        "rss:https://acme.example/blog/?p=1050",
        "rss:https://acme.example/blog/sizing-guide/",
    } < set(expected)
    again = [next(r for r in requests[before:] if r.path == p) for p in paths]
    assert [r.status for r in again] == [200, 304]  # only the blog changed


async def test_dropped_connection_resumes_without_gap_or_duplicate(
    stack: Any, namespace: str, cursor_store: Any, feeds: FakeFeeds
) -> None:
    feeds.server.fault(Fault("drop"), lambda r: r.path == "/shoes/atom.xml")
    src = RssSource(Config(), _settings(feeds))
    await run_until(src, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 7)
    assert src.metrics.reconnects >= 1 and any(r.fault == "drop" for r in feeds.server.requests)
    updated = _updated_rss()
    feeds.put("/blog/feed/", updated, RSS_TYPE, "Mon, 23 Nov 2026 07:00:00 GMT")
    feeds.server.fault(Fault("drop"), lambda r: r.path == "/blog/feed/")
    src2 = RssSource(Config(), _settings(feeds), cursor_store.load("rss"))
    await run_until(src2, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 2)
    assert src2.metrics.reconnects >= 1
    expected = _expected(
        feeds, ("/blog/feed/", RSS, RSS_TYPE), ("/shoes/atom.xml", ATOM, ATOM_TYPE)
    )
    expected |= _expected(feeds, ("/blog/feed/", updated, RSS_TYPE))
    _assert_exact(await _events(stack, namespace, 9), expected)


async def test_429_retry_after_is_honoured(
    stack: Any, namespace: str, cursor_store: Any, feeds: FakeFeeds
) -> None:
    feeds.server.fault(Fault("status", 429, {"Retry-After": "1"}, b"slow down"))
    src = RssSource(Config(), _settings(feeds))
    await run_until(src, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 7)
    first = feeds.server.requests[0]
    second = next(r for r in feeds.server.requests[1:] if r.path == first.path)
    assert first.fault == "status" and second.at - first.at >= 1.0
    assert src.metrics.rate_limited_waits == 1
    expected = _expected(
        feeds, ("/blog/feed/", RSS, RSS_TYPE), ("/shoes/atom.xml", ATOM, ATOM_TYPE)
    )
    _assert_exact(await _events(stack, namespace, 7), expected)


async def test_malformed_feeds_go_to_the_dlq_and_polling_goes_on(
    stack: Any, namespace: str, cursor_store: Any, feeds: FakeFeeds
) -> None:
    garbage = b"<html><body>502 Bad Gateway</body></html>"
    feeds.server.fault(
        Fault("body", 200, {"Content-Type": "text/html"}, garbage),
        lambda r: r.path == "/shoes/atom.xml",
    )
    cut = RSS[: RSS.index(b"<item>", RSS.index(b"<item>") + 1) + 40]
    feeds.put("/blog/feed/", cut, RSS_TYPE, "Fri, 20 Nov 2026 10:00:00 GMT")
    src = RssSource(Config(), _settings(feeds))
    await run_until(
        src, stack.bootstrap, namespace, cursor_store, lambda s: s.rejected >= 2 and s.events >= 4
    )
    feeds.put("/blog/feed/", RSS, RSS_TYPE, "Fri, 20 Nov 2026 10:15:03 GMT")  # repaired
    await run_until(src, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 3)

    dlq = await read_topic(stack.bootstrap, f"{namespace}.dlq", 2)
    reasons = sorted(r.headers[DLQ_REASON].decode() for r in dlq)
    assert all(r.headers[DLQ_SOURCE] == b"rss" for r in dlq)
    assert reasons == ["bad_payload", "invalid_xml"]  # the broken document is kept once
    assert {r.value for r in dlq} == {garbage, cut}
    expected = _expected(
        feeds, ("/blog/feed/", RSS, RSS_TYPE), ("/shoes/atom.xml", ATOM, ATOM_TYPE)
    )
    _assert_exact(await _events(stack, namespace, 7), expected)


async def test_cli_streams_into_kafka(
    stack: Any, namespace: str, tmp_path: Path, feeds: FakeFeeds
) -> None:
    cmd = [
        "ingest", "rss", "--config", str(stack.config_path), "--namespace", namespace,
        "--url", feeds.server.url + "/shoes/atom.xml", "--cursor-dir", str(tmp_path / "cur"),
        "--set", "poll_seconds=0.2",
    ]  # fmt: skip
    root = HERE.parents[2]
    proc = await asyncio.create_subprocess_exec(
        str(root / ".venv" / "bin" / "python"), "-c",
        "import argparse, sys; from deploy.commands import ingest; p = argparse.ArgumentParser(); "
        "ingest.register(p.add_subparsers(dest='command')); a = p.parse_args(sys.argv[1:]); "
        "sys.exit(a.func(a))",
        *cmd, stderr=asyncio.subprocess.PIPE, cwd=str(root),
    )  # fmt: skip
    try:
        got = await _events(stack, namespace, 3)
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()[-2000:]
    _assert_exact(got, _expected(feeds, ("/shoes/atom.xml", ATOM, ATOM_TYPE)))
    saved = json.loads((tmp_path / "cur" / "rss.json").read_text())["cursor"]["feeds"]
    assert saved[feeds.server.url + "/shoes/atom.xml"]["etag"]
