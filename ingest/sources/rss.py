"""RSS/Atom: poll the configured feeds with conditional GET (ETag, Last-Modified).

No credentials. ``[sources.rss] feeds = ["https://…/feed.xml", …]`` (``--url`` adds one
more). Each poll asks every feed with ``If-None-Match`` / ``If-Modified-Since`` from its
previous answer, so an unchanged feed costs a 304; entries not seen before become posts
(see ``ingest.sources.rss_parse`` for ids and fields). The cursor keeps, per feed, the
validators and the ids of the entries already emitted; the validators are only kept once
the entries of that answer are in Kafka (the runner checkpoints after the acks), so a crash
in between fetches the whole document again. Feeds are chosen by hand, so everything in them
is kept unless ``filter = true`` (then entries must match something tracked).

Feeds are independent: each is polled by its own task on its own schedule, with its own
poller (so one host's rate limit never delays another's), at most ``concurrency`` at once.
A feed that does not answer usably within its turn's budget (``attempts`` tries,
``budget_seconds``, each try at most ``attempt_seconds`` body included) is skipped until its
next turn, so a dead or slow feed never holds back a live one. A batch's cursor holds this
feed's new state and the other feeds' last checkpointed states (never another feed's state
whose entries are not in Kafka yet).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec

from ingest.backoff import Backoff
from ingest.config import Config, ConfigError
from ingest.events import Event, InvalidEvent, event_ts
from ingest.http import HTTPStatusError, make_client
from ingest.sources.base import Batch, Rejected, Source, load_settings
from ingest.sources.cli import source_cli
from ingest.sources.polling import Poller
from ingest.sources.rss_parse import parse_feed

log = logging.getLogger(__name__)

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
)


class RssSettings(msgspec.Struct, forbid_unknown_fields=True):
    feeds: list[str] = []
    url: str = ""  # one more feed (``--url``)
    poll_seconds: float = 300.0
    filter: bool = False
    seen: int = 2000  # entry ids remembered per feed
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 300.0
    attempts: int = 3  # tries per feed and turn
    budget_seconds: float = 120.0  # time per feed and turn, waits included
    attempt_seconds: float = 60.0  # one try, body included
    max_bytes: int = 16 * 1024 * 1024  # a feed document, after decompression
    concurrency: int = 8  # feeds fetched at once


class RssSource(Source):
    name = "rss"

    def __init__(self, config: Config, settings: dict[str, Any], cursor: Any = None) -> None:
        super().__init__(config, settings, cursor)
        self.opts = load_settings(RssSettings, self.name, settings)
        feeds = [self.opts.url, *self.opts.feeds] if self.opts.url else list(self.opts.feeds)
        self.feeds = list(dict.fromkeys(f.strip() for f in feeds if f.strip()))
        if not self.feeds:
            raise ConfigError("sources.rss: no feeds (set feeds = [...] or --url)")
        state = cursor.get("feeds") if isinstance(cursor, dict) else None
        self.state: dict[str, dict[str, Any]] = dict(state) if isinstance(state, dict) else {}
        self.max_text = max(1000, (config.kafka.max_event_bytes - 4096) // 4)
        self.durable: dict[str, dict[str, Any]] = dict(self.state)  # as last checkpointed
        self._client: httpx.AsyncClient | None = None
        self.pollers: dict[str, Poller] = {}

    def cursor_value(self, feed: str | None = None) -> dict[str, Any]:
        """The cursor: checkpointed feed states, and ``feed``'s current one."""
        states = dict(self.durable)
        if feed is not None and feed in self.state:
            states[feed] = self.state[feed]
        return {"feeds": {k: dict(v) for k, v in states.items()}}

    def _poller(self, feed: str) -> Poller:
        poller = self.pollers.get(feed)
        if poller is None:
            assert self._client is not None
            backoff = Backoff(
                initial=self.opts.retry_initial_seconds, maximum=self.opts.retry_max_seconds
            )
            poller = self.pollers[feed] = Poller(
                self._client,
                self.metrics,
                backoff=backoff,
                max_body_bytes=self.opts.max_bytes,
                attempt_seconds=self.opts.attempt_seconds,
                budget_seconds=self.opts.budget_seconds,
                max_attempts=self.opts.attempts,
            )
        return poller

    async def poll(self, feed: str) -> Batch | None:
        poller = self._poller(feed)
        state = self.state.get(feed) or {"etag": None, "modified": None, "seen": []}
        headers = {"Accept": ACCEPT}
        if state.get("etag"):
            headers["If-None-Match"] = state["etag"]
        if state.get("modified"):
            headers["If-Modified-Since"] = state["modified"]
        try:
            resp = await poller.request("GET", feed, headers=headers)
        except HTTPStatusError as exc:
            log.error("rss: %s answered %s; skipping it this round", _host(feed), exc)
            return None
        if resp.status_code == 304:
            return None
        content_type = resp.headers.get("Content-Type", "application/xml")
        try:
            page = parse_feed(
                resp.content, feed, time.time(), content_type=content_type, max_text=self.max_text
            )
        except InvalidEvent as exc:
            # Validators are not kept: the next poll fetches the whole document again.
            return Batch(rejected=[Rejected(resp.content, exc.reason, exc.detail)])
        seen = set(state["seen"])
        fresh = [e for e in page.entries if e.key not in seen]
        rejected = [e.result for e in fresh if isinstance(e.result, Rejected)]
        events: list[Event] = [e.result for e in fresh if not isinstance(e.result, Rejected)]
        events.sort(key=event_ts)
        if self.opts.filter and not self.tracked.empty:
            events = [e for e in events if self._wanted(e)]
        digest = hashlib.sha1(resp.content).hexdigest()
        if page.broken and state.get("broken") != digest:
            # feedparser recovered what it could; the document itself is kept, once.
            detail = f"rss {feed}: {page.broken}"
            rejected.insert(0, Rejected(resp.content, "invalid_xml", detail))
        keys = list(dict.fromkeys([*state["seen"], *(e.key for e in fresh)]))
        self.state[feed] = {
            "etag": resp.headers.get("ETag"),
            "modified": resp.headers.get("Last-Modified"),
            "seen": keys[-self.opts.seen :],
            "broken": digest if page.broken else None,
        }
        if not fresh and not rejected and state == self.state[feed]:
            return None
        return Batch(events=events, rejected=rejected, cursor=self.cursor_value(feed))

    def _wanted(self, ev: Event) -> bool:
        return self.tracked.matches(
            text=getattr(ev, "text", ""),
            hashtags=getattr(ev, "hashtags", ()),
            links=getattr(ev, "links", ()),
            authors=[getattr(ev, "author").id],  # noqa: B009
            platform="rss",
        )

    async def batches(self) -> AsyncIterator[Batch]:
        self._client = make_client("", headers={"Accept": ACCEPT})
        self.pollers = {}  # bound to this client
        log.info("rss: polling %d feeds", len(self.feeds))
        ready: asyncio.Queue[tuple[str, Batch]] = asyncio.Queue(maxsize=len(self.feeds))
        slots = asyncio.Semaphore(max(1, self.opts.concurrency))
        tasks = [asyncio.create_task(self._feed_loop(f, ready, slots)) for f in self.feeds]
        try:
            while True:
                feed, batch = await ready.get()
                if batch.cursor is None:  # dead letters only: no state to keep
                    yield batch
                    continue
                # The feed's state when it was polled (its own task may be further by now),
                # beside the other feeds' checkpointed states.
                mine = batch.cursor["feeds"][feed]
                batch.cursor = {"feeds": {**self.cursor_value()["feeds"], feed: mine}}
                yield batch
                # The runner asks for the next batch only once this one is in Kafka and
                # checkpointed: this state of the feed is now durable.
                self.durable[feed] = mine
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _feed_loop(
        self, feed: str, ready: asyncio.Queue[tuple[str, Batch]], slots: asyncio.Semaphore
    ) -> None:
        """One feed on its own schedule; a turn that fails is skipped, never fatal."""
        while True:
            started = time.monotonic()
            try:
                async with slots:
                    batch = await self.poll(feed)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug or a surprise in one feed must not stop the others
                log.exception("rss: %s failed this turn; trying again next turn", _host(feed))
                batch = None
            if batch is not None:
                await ready.put((feed, batch))
            await asyncio.sleep(max(0.0, self.opts.poll_seconds - (time.monotonic() - started)))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def _host(url: str) -> str:
    return httpx.URL(url).host or url


add_arguments, run = source_cli(RssSource)
