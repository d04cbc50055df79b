"""Bounds of the polling sources (issue 9): a dead or slow RSS feed never holds back a live
one; Retry-After is capped at an hour; redirects are followed, boundedly; bodies are read
with a byte cap also after gzip (a gzip bomb is refused without being held in memory)."""

from __future__ import annotations

import asyncio
import gzip
import time
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from ingest_helpers import read_topic, run_until
from replay_http import ReplayServer
from test_rss import ATOM, ATOM_TYPE, RSS, RSS_TYPE

from ingest.config import Config
from ingest.http import BodyTooLarge, HTTPStatusError, make_client
from ingest.sources.base import SourceMetrics
from ingest.sources.polling import MAX_WAIT_SECONDS, Poller
from ingest.sources.rss import RssSource


@pytest.fixture
async def server() -> AsyncIterator[ReplayServer]:
    srv = ReplayServer()
    bomb = gzip.compress(b"\0" * (200 * 1024 * 1024), compresslevel=9)  # 200 MiB inflated
    small = gzip.compress(b"hello " * 1000)

    async def gz(request: web.Request) -> web.Response:
        body = bomb if request.match_info["name"] == "bomb" else small
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    async def hop(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n == 0:
            return web.Response(text="arrived")
        raise web.HTTPFound(f"/hop/{n - 1}")

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def slow_down(request: web.Request) -> web.Response:
        if len(srv.seen("/slow")) == 1:
            return web.Response(status=429, headers={"Retry-After": "86400"})
        return web.Response(text="ok")

    srv.route("GET", "/gz/{name}", gz)
    srv.route("GET", "/hop/{n}", hop)
    srv.route("GET", "/loop", loop)
    srv.route("GET", "/slow", slow_down)
    await srv.start()
    yield srv
    await srv.stop()


def poller(srv: ReplayServer, **kw: Any) -> Poller:
    async def no_sleep(seconds: float) -> None:
        waited.append(seconds)

    waited: list[float] = []
    p = Poller(make_client(srv.url), SourceMetrics("test"), sleep=no_sleep, **kw)
    p.slept = waited  # type: ignore[attr-defined]
    return p


async def test_gzip_bomb_is_refused_within_the_cap(server: ReplayServer) -> None:
    p = poller(server, max_body_bytes=1024 * 1024)
    ok = await p.request("GET", "/gz/small")
    assert ok.content == b"hello " * 1000 and "content-encoding" not in ok.headers
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge):
            await p.request("GET", "/gz/bomb")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, peak  # 200 MiB inflated, never held
    assert len(server.seen("/gz/bomb")) == 1  # not retried


async def test_redirects_are_followed_up_to_five(server: ReplayServer) -> None:
    p = poller(server)
    assert (await p.request("GET", "/hop/5")).text == "arrived"
    with pytest.raises(HTTPStatusError, match="redirect"):
        await p.request("GET", "/hop/6")
    with pytest.raises(HTTPStatusError):
        await p.request("GET", "/loop")
    assert len(server.seen("/loop")) == 6  # the first try and five redirects, once


async def test_retry_after_is_capped_at_an_hour(server: ReplayServer) -> None:
    p = poller(server)
    assert (await p.request("GET", "/slow")).text == "ok"
    assert p.waits == [MAX_WAIT_SECONDS] and MAX_WAIT_SECONDS == 3600
    assert 3599 < p.slept[0] <= 3600  # type: ignore[attr-defined]


# -- a dead feed beside a live one, through the real runner and broker --------------------


async def black_hole() -> tuple[asyncio.Server, str]:
    """Accepts connections and never answers a byte."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)

    srv = await asyncio.start_server(hold, "127.0.0.1", 0)
    return srv, f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/feed.xml"


async def test_a_dead_feed_never_holds_back_a_live_one(
    stack: Any, namespace: str, cursor_store: Any
) -> None:
    live = ReplayServer()
    docs = {"/blog/feed/": (RSS, RSS_TYPE)}

    async def serve(request: web.Request) -> web.Response:
        body, ctype = docs[request.path]
        return web.Response(body=body, headers={"Content-Type": ctype})

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="internal error")

    live.route("GET", "/blog/feed/", serve)
    live.route("GET", "/shoes/atom.xml", serve)
    live.route("GET", "/broken.xml", broken)
    await live.start()
    hole, hole_url = await black_hole()
    try:
        settings = {
            # The dead ones first: polled in order, they would hold the live one back.
            "feeds": [hole_url, live.url + "/broken.xml", live.url + "/blog/feed/"],
            "poll_seconds": 1.0, "retry_initial_seconds": 0.2, "retry_max_seconds": 1.0,
            "attempts": 3, "budget_seconds": 5.0, "attempt_seconds": 2.0,
        }  # fmt: skip
        src = RssSource(Config(), settings)
        started = time.monotonic()
        stats = await run_until(
            src, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 4, timeout=20
        )
        first = time.monotonic() - started
        # A new entry in the live feed arrives within its poll interval, while the dead
        # ones keep failing beside it.
        docs["/blog/feed/"] = (ATOM, ATOM_TYPE)
        stats2_started = time.monotonic()
        src2 = RssSource(Config(), settings, cursor_store.load("rss"))
        await run_until(
            src2, stack.bootstrap, namespace, cursor_store, lambda s: s.events >= 3, timeout=20
        )
        second = time.monotonic() - stats2_started
    finally:
        hole.close()
        await live.stop()
    print(f"\nlive feed: first items after {first:.2f}s, the update after {second:.2f}s")
    assert first < 2.0 and second < 2.5, (first, second)
    assert stats.events == 4
    assert len(live.seen("/broken.xml")) >= 1
    events = await read_topic(stack.bootstrap, f"{namespace}.events", 7, settle=1)
    assert {r.json()["platform"] for r in events} == {"rss"} and len(events) == 7
