"""Reddit: poll subreddit listings and search with an app-only OAuth token.

Credentials: ``REDDIT_CLIENT_ID`` and ``REDDIT_CLIENT_SECRET`` (or ``*_FILE``) of a Reddit
"script"/"web" app; the source trades them for a client-credentials token at
``<auth_url>/api/v1/access_token`` and renews it on expiry or 401. It polls
``/r/<a+b>/new`` (submissions) and ``/r/<a+b>/comments`` for the configured subreddits, and
``/search?sort=new`` for the tracked terms, hashtags, domains (``site:``) and accounts
(``author:``), always with ``raw_json=1``. Settings: ``[sources.reddit]`` (see
``RedditSettings``).

Resuming follows Reddit's listing model: after new items the next request asks for what
is newer than the newest (``before=<fullname>``), paging on while pages come back full;
after an empty answer it reads the head of the listing again (an anchor that was deleted
answers empty forever) and drops what it has already seen. When the head holds nothing
seen, older pages (``after=``) are read until it does, so a burst between polls leaves no
gap. The cursor keeps, per listing, the anchor and the last fullnames seen.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from ingest.backoff import Backoff
from ingest.config import Config, ConfigError, read_secret
from ingest.events import InvalidEvent
from ingest.http import HTTPStatusError, make_client
from ingest.sources.base import Batch, Rejected, Source, load_settings
from ingest.sources.cli import source_cli
from ingest.sources.polling import Poller
from ingest.sources.reddit_parse import Item, Parsed, parse_listing

log = logging.getLogger(__name__)

API_URL = "https://oauth.reddit.com"
AUTH_URL = "https://www.reddit.com"
SEARCH_QUERY_MAX = 512  # Reddit's limit on q


class RedditSettings(msgspec.Struct, forbid_unknown_fields=True):
    url: str = API_URL
    auth_url: str = ""  # default: www.reddit.com, or ``url`` when that is not Reddit's
    subreddits: list[str] = []
    listings: list[str] = msgspec.field(default_factory=lambda: ["new", "comments"])
    search: bool = True  # search all of Reddit for the tracked terms
    filter_subreddits: bool = False  # also drop subreddit items that match nothing tracked
    poll_seconds: float = 30.0
    limit: int = 100
    max_pages: int = 10  # per listing and poll, when catching up
    backfill_pages: int = 1  # pages read on the very first poll (0: start from now)
    seen: int = 1000  # fullnames remembered per listing
    user_agent: str = "python:ripple-ingest:0.1 (engagement monitoring)"
    client_id_env: str = "REDDIT_CLIENT_ID"
    client_secret_env: str = "REDDIT_CLIENT_SECRET"
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 120.0


@dataclass(frozen=True)
class Listing:
    key: str  # stable name in the cursor
    path: str
    params: tuple[tuple[str, str], ...] = ()
    filtered: bool = False  # apply the tracked-terms filter here (the server did not)


def search_queries(terms: list[str], limit: int = SEARCH_QUERY_MAX) -> list[str]:
    """OR-ed Reddit search clauses, split so no query passes Reddit's length limit."""
    queries: list[str] = []
    current = ""
    for clause in terms:
        joined = f"{current} OR {clause}" if current else clause
        if current and len(joined) > limit:
            queries.append(current)
            current = clause
        else:
            current = joined
    if current:
        queries.append(current)
    return queries


def _quoted(term: str) -> str:
    term = term.replace('"', " ").strip()
    return f'"{term}"' if " " in term else term


class RedditSource(Source):
    name = "reddit"

    def __init__(self, config: Config, settings: dict[str, Any], cursor: Any = None) -> None:
        super().__init__(config, settings, cursor)
        self.opts = load_settings(RedditSettings, self.name, settings)
        self.client_id = read_secret(self.opts.client_id_env)
        self.client_secret = read_secret(self.opts.client_secret_env)
        if not self.client_id or not self.client_secret:
            raise ConfigError(
                f"reddit: set {self.opts.client_id_env} and {self.opts.client_secret_env} "
                "(or *_FILE) to the app's OAuth client id and secret"
            )
        self.listings = self._listings()
        if not self.listings:
            raise ConfigError("sources.reddit: no subreddits and nothing tracked to search for")
        state = cursor.get("listings") if isinstance(cursor, dict) else None
        self.state: dict[str, dict[str, Any]] = dict(state) if isinstance(state, dict) else {}
        self.max_text = max(1000, (config.kafka.max_event_bytes - 4096) // 4)
        self._token: str | None = None
        self._token_expires = 0.0
        self._api: httpx.AsyncClient | None = None
        self._auth: httpx.AsyncClient | None = None
        self.poller: Poller | None = None

    def _listings(self) -> list[Listing]:
        out: list[Listing] = []
        subs = "+".join(s.strip().removeprefix("r/") for s in self.opts.subreddits if s.strip())
        if subs:
            for kind in self.opts.listings:
                out.append(
                    Listing(
                        f"r/{subs}/{kind}", f"/r/{subs}/{kind}", (), self.opts.filter_subreddits
                    )
                )
        if self.opts.search:
            tracked = self.tracked
            clauses = [_quoted(t) for t in (*tracked.terms, *tracked.hashtags)]
            clauses += [f"site:{d}" for d in tracked.domains]
            clauses += [f"author:{a}" for a in tracked.accounts_for("reddit")]
            for q in search_queries(list(dict.fromkeys(clauses))):
                params = (("q", q), ("sort", "new"), ("type", "link"))
                out.append(Listing(f"search:{q}", "/search", params))
        return out

    # --- HTTP ---------------------------------------------------------------------------

    def _auth_base(self) -> str:
        if self.opts.auth_url:
            return self.opts.auth_url
        return AUTH_URL if self.opts.url == API_URL else self.opts.url

    async def _refresh_token(self) -> None:
        self._token = None
        await self._ensure_token()

    async def _ensure_token(self) -> None:
        if self._token and time.time() < self._token_expires - 60:
            return
        assert self._auth is not None and self.client_id and self.client_secret
        auth_poller = Poller(self._auth, self.metrics, backoff=self._backoff())
        while True:
            try:
                resp = await auth_poller.request(
                    "POST",
                    "/api/v1/access_token",
                    data={"grant_type": "client_credentials"},
                    auth=(self.client_id, self.client_secret),
                )
                body = resp.json()
                token = body["access_token"]
                expires = float(body.get("expires_in", 3600))
                break
            except HTTPStatusError as exc:
                # Wrong credentials: say so (never what they are) and keep trying slowly.
                log.error("reddit: token request refused (%s); check the credentials", exc)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("reddit: unusable token answer (%s)", type(exc).__name__)
            await asyncio.sleep(auth_poller.backoff.next_delay())
        self._token = str(token)
        self._token_expires = time.time() + expires
        assert self._api is not None
        self._api.headers["Authorization"] = f"Bearer {self._token}"

    def _backoff(self) -> Backoff:
        return Backoff(initial=self.opts.retry_initial_seconds, maximum=self.opts.retry_max_seconds)

    async def _fetch(self, listing: Listing, extra: dict[str, str]) -> Parsed | Rejected | None:
        """One listing page; a Rejected when the body is not a listing; None on a 4xx."""
        assert self.poller is not None
        await self._ensure_token()
        params = {**dict(listing.params), "limit": str(self.opts.limit), "raw_json": "1", **extra}
        try:
            resp = await self.poller.request("GET", listing.path, params=params)
        except HTTPStatusError as exc:
            log.error("reddit: %s answered %s; skipping it this round", listing.path, exc)
            return None
        try:
            return parse_listing(resp.content, time.time(), max_text=self.max_text)
        except InvalidEvent as exc:
            return Rejected(
                raw=resp.content, reason=exc.reason, detail=f"reddit {listing.path}: {exc.detail}"
            )

    # --- polling ------------------------------------------------------------------------

    async def poll(self, listing: Listing) -> Batch | None:
        """Everything new in one listing, oldest first, with the cursor after it."""
        state = self.state.get(listing.key) or {"before": None, "seen": []}
        seen: set[str] = set(state["seen"])
        first_poll = not seen and state.get("before") is None
        limit = self.opts.limit
        fresh: list[Item] = []  # newest first
        if state.get("before"):
            anchor = state["before"]
            for _ in range(self.opts.max_pages):
                page = await self._fetch(listing, {"before": anchor})
                if not isinstance(page, Parsed):
                    # Pages so far are older than what failed: keeping them leaves no gap.
                    return self._finish(listing, state, fresh, False, page)
                new = [i for i in page.items if i.name not in seen]
                fresh = new + fresh  # each page is newer than the one before it
                if len(page.items) < limit or not page.items:
                    break
                anchor = page.items[0].name
        else:
            pages = max(1, self.opts.backfill_pages) if first_poll else self.opts.max_pages
            after: str | None = None
            for _ in range(pages):
                page = await self._fetch(listing, {"after": after} if after else {})
                if not isinstance(page, Parsed):
                    # Older pages are missing: keep nothing, ask the same again next round.
                    return Batch(rejected=[page]) if isinstance(page, Rejected) else None
                new = [i for i in page.items if i.name not in seen]
                fresh += new  # each page is older than the one before it
                overlap = len(new) < len(page.items)
                if overlap or len(page.items) < limit or not page.after:
                    break
                after = page.after
        return self._finish(listing, state, fresh, first_poll, None)

    def _finish(
        self,
        listing: Listing,
        state: dict[str, Any],
        fresh: list[Item],
        first_poll: bool,
        failure: Rejected | None,
    ) -> Batch | None:
        failed = [failure] if failure is not None else []
        if not fresh:
            # Nothing newer than the anchor: read the head next time (the anchor may be
            # gone). After a failure, keep the anchor and ask the same again.
            if failure is None:
                self.state[listing.key] = {"before": None, "seen": state["seen"]}
            return Batch(rejected=failed) if failed else None
        ordered = list(reversed(_unique_items(fresh)))
        names = [*state["seen"], *(i.name for i in ordered)]
        self.state[listing.key] = {"before": ordered[-1].name, "seen": names[-self.opts.seen :]}
        if first_poll and self.opts.backfill_pages == 0:
            return Batch(cursor=self.cursor_value())  # "from now": remember, emit nothing
        events, rejected = [], failed
        for item in ordered:
            if isinstance(item.result, Rejected):
                rejected.append(item.result)
            elif item.result is not None and (not listing.filtered or self._wanted(item)):
                events.append(item.result)
        return Batch(events=events, rejected=rejected, cursor=self.cursor_value())

    def _wanted(self, item: Item) -> bool:
        ev = item.result
        text = getattr(ev, "text", "")
        return self.tracked.matches(
            text=text,
            hashtags=getattr(ev, "hashtags", ()),
            links=getattr(ev, "links", ()),
            authors=[getattr(ev, "author").id, getattr(ev, "reply_to_author_id", None)],  # noqa: B009
            platform="reddit",
        )

    def cursor_value(self) -> dict[str, Any]:
        return {"listings": {k: dict(v) for k, v in self.state.items()}}

    async def batches(self) -> AsyncIterator[Batch]:
        self._api = make_client(self.opts.url, headers={"User-Agent": self.opts.user_agent})
        self._auth = make_client(self._auth_base(), headers={"User-Agent": self.opts.user_agent})
        self.poller = Poller(
            self._api, self.metrics, backoff=self._backoff(), refresh=self._refresh_token
        )
        log.info("reddit: polling %s", ", ".join(lst.key for lst in self.listings))
        while True:
            started = time.monotonic()
            for listing in self.listings:
                batch = await self.poll(listing)
                if batch is not None:
                    yield batch
            await asyncio.sleep(max(0.0, self.opts.poll_seconds - (time.monotonic() - started)))

    async def aclose(self) -> None:
        for client in (self._api, self._auth):
            if client is not None:
                await client.aclose()


def _unique_items(items: list[Item]) -> list[Item]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item.name not in seen:
            seen.add(item.name)
            out.append(item)
    return out


add_arguments, run = source_cli(RedditSource)
