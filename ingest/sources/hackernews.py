"""Hacker News: poll Algolia's ``search_by_date`` for the tracked terms (or Firebase's item feed).

No credentials. ``api = "algolia"`` (default, ``url`` https://hn.algolia.com/api/v1) asks
``/search_by_date`` once per tracked term, hashtag and domain (a quoted phrase for
multi-word terms; with nothing tracked, one query for everything), and once per tracked HN
account (``tags=author_<name>``), for stories and comments created after the cursor
(``numericFilters=created_at_i>T``). It pages by time, not by page number: each next request
asks for what is older than the oldest hit so far, so Algolia's 1000-hit page cap does not
cut a catch-up short and items arriving meanwhile do not shift pages. Algolia indexes with
a delay, so every poll looks back ``overlap_seconds`` before the newest item seen and drops
the ids it already emitted (kept in the cursor for that window).

``api = "firebase"`` (``url`` https://hacker-news.firebaseio.com/v0) walks every new item id
up to ``/maxitem.json`` and fetches ``/item/<id>.json``; Firebase cannot filter, so items
are filtered here by the tracked terms. The cursor is the last item id done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import msgspec

from ingest.backoff import Backoff
from ingest.config import Config
from ingest.events import Event, InvalidEvent
from ingest.http import HTTPStatusError, make_client
from ingest.sources.base import Batch, Rejected, Source, load_settings
from ingest.sources.cli import source_cli
from ingest.sources.hackernews_parse import SearchPage, parse_firebase_item, parse_search
from ingest.sources.polling import Poller

log = logging.getLogger(__name__)

ALGOLIA_URL = "https://hn.algolia.com/api/v1"
FIREBASE_URL = "https://hacker-news.firebaseio.com/v0"


class HackerNewsSettings(msgspec.Struct, forbid_unknown_fields=True):
    api: Literal["algolia", "firebase"] = "algolia"
    url: str = ""  # default: Algolia's or Firebase's public endpoint, by ``api``
    tags: list[str] = msgspec.field(default_factory=lambda: ["story", "comment", "poll", "job"])
    poll_seconds: float = 60.0
    hits_per_page: int = 100
    max_pages: int = 50  # per query and poll
    overlap_seconds: int = 600
    since: float | None = None  # unix time to start from without a cursor (default: now)
    max_items: int = 2000  # firebase: item ids per poll
    backfill_items: int = 0  # firebase: item ids before maxitem to start from without a cursor
    chunk: int = 100  # firebase: item ids per batch
    concurrency: int = 8  # firebase: item requests in flight
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 120.0


@dataclass(frozen=True)
class Query:
    query: str  # "" for everything
    tags: str  # Algolia tag filter, e.g. "(story,comment)" or "(story,comment),author_pg"


def algolia_queries(
    terms: tuple[str, ...], accounts: tuple[str, ...], tags: list[str]
) -> list[Query]:
    """One Algolia query per tracked clause (Algolia ANDs the words of one query)."""
    base = "(" + ",".join(tags) + ")"
    out = [Query(f'"{t}"' if " " in t else t, base) for t in dict.fromkeys(terms)]
    out += [Query("", f"{base},author_{a}") for a in accounts]
    return out or [Query("", base)]


class HackerNewsSource(Source):
    name = "hackernews"

    def __init__(self, config: Config, settings: dict[str, Any], cursor: Any = None) -> None:
        super().__init__(config, settings, cursor)
        self.opts = load_settings(HackerNewsSettings, self.name, settings)
        default = ALGOLIA_URL if self.opts.api == "algolia" else FIREBASE_URL
        self.url = self.opts.url or default
        self.max_text = max(1000, (config.kafka.max_event_bytes - 4096) // 4)
        tracked = self.tracked
        self.queries = algolia_queries(
            (*tracked.terms, *tracked.hashtags, *tracked.domains),
            tracked.accounts_for("hackernews"),
            self.opts.tags,
        )
        cur = cursor if isinstance(cursor, dict) else {}
        start = self.opts.since if self.opts.since is not None else time.time()
        self.watermark = int(cur.get("t", start))
        self.seen: dict[str, int] = {str(k): int(v) for k, v in cur.get("seen", [])}
        self.maxitem: int | None = cur.get("maxitem")
        self._client: httpx.AsyncClient | None = None
        self.poller: Poller | None = None

    def cursor_value(self) -> dict[str, Any]:
        if self.opts.api == "firebase":
            return {"maxitem": self.maxitem}
        return {"t": self.watermark, "seen": [[k, v] for k, v in self.seen.items()]}

    async def _get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response | None:
        assert self.poller is not None
        try:
            return await self.poller.request("GET", path, params=params)
        except HTTPStatusError as exc:
            log.error("hackernews: %s answered %s; skipping it this round", path, exc)
            return None

    # --- Algolia ------------------------------------------------------------------------

    async def _search(self, q: Query, lower: int) -> tuple[list[Any], list[Rejected], bool]:
        """Every hit newer than ``lower`` for one query: (hits, rejected, complete)."""
        hits: list[Any] = []
        rejected: list[Rejected] = []
        upper: int | None = None
        page = 0
        for _ in range(self.opts.max_pages):
            numeric = f"created_at_i>{lower}" + (
                f",created_at_i<={upper}" if upper is not None else ""
            )
            params = {
                "tags": q.tags, "numericFilters": numeric,
                "hitsPerPage": str(self.opts.hits_per_page), "page": str(page),
            }  # fmt: skip
            if q.query:
                params["query"] = q.query
            resp = await self._get("/search_by_date", params)
            if resp is None:
                return hits, rejected, False
            try:
                result: SearchPage = parse_search(resp.content, time.time(), max_text=self.max_text)
            except InvalidEvent as exc:
                detail = f"hackernews /search_by_date: {exc.detail}"
                rejected.append(Rejected(raw=resp.content, reason=exc.reason, detail=detail))
                return hits, rejected, False
            hits += result.hits
            if len(result.hits) < self.opts.hits_per_page:
                return hits, rejected, True
            # Next: what is at or before the oldest hit so far (ids already had are dropped).
            oldest = min((h.created for h in result.hits if h.created >= 0), default=None)
            if oldest is None or oldest == upper:
                page += 1  # a full page within one second: page through that second
            else:
                upper, page = oldest, 0
        return hits, rejected, False

    async def _algolia_poll(self) -> Batch | None:
        lower = self.watermark - self.opts.overlap_seconds
        fresh: dict[str, Any] = {}
        rejected: list[Rejected] = []
        complete = True
        for q in self.queries:
            hits, bad, done = await self._search(q, lower)
            complete &= done
            rejected += bad
            for h in hits:
                if h.object_id not in self.seen and h.object_id not in fresh:
                    fresh[h.object_id] = h
        if not fresh and not rejected:
            return None
        newest = max((h.created for h in fresh.values()), default=self.watermark)
        if complete:  # an incomplete poll must not move the window past what it missed
            self.watermark = max(self.watermark, newest)
        for oid, h in fresh.items():
            self.seen[oid] = h.created if h.created >= 0 else newest
        floor = self.watermark - self.opts.overlap_seconds
        self.seen = {k: v for k, v in self.seen.items() if v > floor}
        ordered = sorted(fresh.values(), key=lambda h: h.created)
        events = [h.result for h in ordered if not isinstance(h.result, Rejected | None)]
        rejected += [h.result for h in ordered if isinstance(h.result, Rejected)]
        return Batch(events=events, rejected=rejected, cursor=self.cursor_value())

    # --- Firebase -----------------------------------------------------------------------

    async def _item(self, item_id: int, gate: asyncio.Semaphore) -> Event | Rejected | None:
        async with gate:
            resp = await self._get(f"/item/{item_id}.json")
        if resp is None:
            return None
        try:
            return parse_firebase_item(resp.content, time.time(), max_text=self.max_text)
        except InvalidEvent as exc:
            return Rejected(raw=resp.content, reason=exc.reason, detail=exc.detail)

    def _wanted(self, ev: Event) -> bool:
        return self.tracked.matches(
            text=getattr(ev, "text", ""),
            hashtags=getattr(ev, "hashtags", ()),
            links=getattr(ev, "links", ()),
            authors=[getattr(ev, "author").id],  # noqa: B009
            platform="hackernews",
        )

    async def _firebase_poll(self) -> AsyncIterator[Batch]:
        resp = await self._get("/maxitem.json")
        if resp is None:
            return
        try:
            top = int(msgspec.json.decode(resp.content))
        except (msgspec.DecodeError, ValueError, TypeError) as exc:
            yield Batch(
                rejected=[Rejected(resp.content, "bad_payload", f"hackernews /maxitem.json: {exc}")]
            )
            return
        if self.maxitem is None:
            self.maxitem = max(0, top - self.opts.backfill_items)  # no cursor: from (about) now
            yield Batch(cursor=self.cursor_value())
        last = min(top, self.maxitem + self.opts.max_items)
        gate = asyncio.Semaphore(self.opts.concurrency)
        for lo in range(self.maxitem + 1, last + 1, self.opts.chunk):
            ids = range(lo, min(last, lo + self.opts.chunk - 1) + 1)
            results = await asyncio.gather(*(self._item(i, gate) for i in ids))
            events = [r for r in results if r is not None and not isinstance(r, Rejected)]
            self.maxitem = ids[-1]
            yield Batch(
                events=[e for e in events if self.tracked.empty or self._wanted(e)],
                rejected=[r for r in results if isinstance(r, Rejected)],
                cursor=self.cursor_value(),
            )

    # --- loop ---------------------------------------------------------------------------

    async def batches(self) -> AsyncIterator[Batch]:
        self._client = make_client(self.url)
        backoff = Backoff(
            initial=self.opts.retry_initial_seconds, maximum=self.opts.retry_max_seconds
        )
        self.poller = Poller(self._client, self.metrics, backoff=backoff)
        log.info("hackernews: polling %s (%s)", self.url, self.opts.api)
        while True:
            started = time.monotonic()
            if self.opts.api == "algolia":
                batch = await self._algolia_poll()
                if batch is not None:
                    yield batch
            else:
                async for b in self._firebase_poll():
                    yield b
            await asyncio.sleep(max(0.0, self.opts.poll_seconds - (time.monotonic() - started)))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


add_arguments, run = source_cli(HackerNewsSource)
