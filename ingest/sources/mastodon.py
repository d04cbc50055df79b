"""Mastodon: statuses, boosts and favourites from the streaming API (SSE), gaps backfilled.

Each configured stream (``public``, ``public:local``, ``public:remote``, ``hashtag:<tag>``,
``user``) is one Server-Sent-Events connection to ``/api/v1/streaming/...``; ``user`` (and
instances that require it for public streams) uses the access token named by
``token_env`` (read with ``read_secret``: ``$MASTODON_ACCESS_TOKEN`` or
``$MASTODON_ACCESS_TOKEN_FILE``). The stream has no resume position, so on every
(re)connect the source first opens the stream, then pages the matching timeline
(``/api/v1/timelines/...``) from the newest status id it saw (``min_id``, the gap-free
form of ``since_id``), then reads the stream; repeats are dropped by id. The cursor is
that newest timeline id per stream.

Canonical ids. Status ids in the API are local to the instance, so the canonical native
id is the status ``uri`` (its ActivityPub id, the same on every instance):
``mastodon:<uri>``. A boost is ``mastodon:<boosted status uri>#reblogged_by/<acct>`` and a
favourite ``mastodon:<status uri>#favourited_by/<acct>``: an account can boost or favourite
a status once, the favourite has no id of its own, and the boost's own id is not in its
notification, so both paths give the same id. Author ids are full accts (``user@domain``),
which mentions carry too (``reply_to_author_id``). ``in_reply_to_id`` is a local id: it is
mapped to its uri from statuses already seen, else looked up once (``/api/v1/statuses/:id``,
cached), else left null.

Events: ``update`` → ``post`` (or ``reshare`` when ``reblog`` is set); ``status.update``
(an edit) → the same ``post`` id, emitted only if the original was not seen (there is no
canonical "edit"); ``notification`` mention/status/quote/update → ``post``, reblog →
``reshare``, favourite → ``reaction``; ``delete`` has no canonical kind and is skipped;
``conversation`` (direct messages) and non-public statuses (``private``, ``direct``) are
never ingested. Heartbeats (``:thump`` comments) keep the stall timer alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
import msgspec
import orjson

from ingest.backoff import Backoff, RateLimited
from ingest.config import read_secret
from ingest.events import (
    Author,
    Event,
    InvalidEvent,
    Post,
    Reaction,
    Reshare,
    format_ts,
    parse_ts,
)
from ingest.http import HTTPStatusError, check_response, make_client
from ingest.sources.base import Batch, RecentIds, Rejected, Source, load_settings
from ingest.sources.cli import source_cli
from ingest.sources.textutil import links_in_text, unique

log = logging.getLogger(__name__)

PUBLIC_VISIBILITY = frozenset({"public", "unlisted"})
STATUS_EVENTS = frozenset({"update", "status.update"})


class MastodonSettings(msgspec.Struct, forbid_unknown_fields=True):
    url: str = "https://mastodon.social"
    enabled: bool = True
    # Empty: hashtag streams for the tracked hashtags, plus the public stream
    # (client-filtered) when terms, domains or accounts are tracked; "public" if nothing is.
    streams: list[str] = []
    token_env: str = "MASTODON_ACCESS_TOKEN"
    filter: Literal["auto", "tracked", "none"] = "auto"
    backfill: bool = True
    backfill_max_pages: int = 20
    resolve_replies: bool = True
    batch_max: int = 500
    batch_linger_ms: int = 200
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    # Mastodon sends a heartbeat comment every ~15 s; silence this long means a dead link.
    stall_seconds: float = 60.0


# --- pure parsing ------------------------------------------------------------------------


class _HTMLText(HTMLParser):
    """Status HTML → plain text, and the links of ordinary anchors (not mentions, hashtags
    or the inline quote marker)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self._skip_depth = 0  # inside <p class="quote-inline">
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "p":
            self._depth += 1
            if "quote-inline" in classes and not self._skip_depth:
                self._skip_depth = self._depth
            if self.parts and not self._skip_depth:
                self.parts.append("\n\n")
        elif tag == "br" and not self._skip_depth:
            self.parts.append("\n")
        elif tag == "a" and not self._skip_depth:
            href = a.get("href")
            if href and not {"mention", "hashtag"} & set(classes) and a.get("rel") != "tag":
                self.links.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            if self._skip_depth == self._depth:
                self._skip_depth = 0
            self._depth = max(0, self._depth - 1)

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)


def html_to_text(content: str) -> tuple[str, list[str]]:
    parser = _HTMLText()
    parser.feed(content)
    parser.close()
    return "".join(parser.parts).strip(), parser.links


def full_acct(account: Mapping[str, Any]) -> str:
    """``user@domain``: remote accts carry the domain, local ones get their profile's host."""
    acct = account.get("acct")
    if not isinstance(acct, str) or not acct:
        raise InvalidEvent("missing_field", "`account.acct` is missing")
    if "@" in acct:
        return acct.lower()
    host = urlsplit(str(account.get("url") or account.get("uri") or "")).hostname or "unknown"
    return f"{acct}@{host}".lower()


def _str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        raise InvalidEvent("missing_field", f"`{where}.{key}` is missing")
    if not isinstance(value, str):
        raise InvalidEvent("wrong_type", f"`{where}.{key}` is {type(value).__name__}")
    return value


def _dict(obj: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        raise InvalidEvent("missing_field", f"`{where}.{key}` is missing")
    if not isinstance(value, dict):
        raise InvalidEvent("wrong_type", f"`{where}.{key}` is {type(value).__name__}")
    return value


def _ts(value: str, where: str) -> str:
    try:
        return format_ts(parse_ts(value))
    except ValueError:
        raise InvalidEvent("invalid_ts", f"`{where}`: {value[:40]!r}") from None


def _author(account: Mapping[str, Any]) -> Author:
    followers = account.get("followers_count")
    acct = full_acct(account)
    ok = isinstance(followers, int) and not isinstance(followers, bool) and followers >= 0
    return Author(id=acct, handle=acct, followers=followers if ok else None)


Resolve = Callable[[str], str | None]


def status_post(
    status: Mapping[str, Any], ingested_at: str, resolve: Resolve | None = None
) -> Post:
    """A (non-boost) status as a canonical post."""
    uri = _str(status, "uri", "status")
    account = _dict(status, "account", "status")
    author = _author(account)
    text, links = html_to_text(_str(status, "content", "status") if "content" in status else "")
    spoiler = status.get("spoiler_text")
    if isinstance(spoiler, str) and spoiler:
        text = f"{spoiler}\n\n{text}" if text else spoiler
    card = status.get("card")
    if isinstance(card, dict) and isinstance(card.get("url"), str):
        links.append(card["url"])
    links += links_in_text(text)
    tags = [
        t["name"].lower()
        for t in status.get("tags") or ()
        if isinstance(t, dict) and isinstance(t.get("name"), str)
    ]
    reply_to = reply_author = None
    parent_id = status.get("in_reply_to_id")
    if parent_id is not None:
        parent_uri = resolve(str(parent_id)) if resolve else None
        reply_to = f"mastodon:{parent_uri}" if parent_uri else None
        parent_account = status.get("in_reply_to_account_id")
        if parent_account is not None and str(parent_account) == str(account.get("id")):
            reply_author = author.id
        else:
            for m in status.get("mentions") or ():
                if isinstance(m, dict) and str(m.get("id")) == str(parent_account):
                    reply_author = full_acct(m)
    quote_of = quote_author = None
    q = status.get("quote")
    if isinstance(q, dict):
        quoted = q.get("quoted_status")
        if isinstance(quoted, dict) and isinstance(quoted.get("uri"), str):
            quote_of = f"mastodon:{quoted['uri']}"
            if isinstance(quoted.get("account"), dict):
                quote_author = full_acct(quoted["account"])
        elif q.get("quoted_status_id") is not None and resolve:
            quoted_uri = resolve(str(q["quoted_status_id"]))
            quote_of = f"mastodon:{quoted_uri}" if quoted_uri else None
    lang = status.get("language")
    url = status.get("url")
    return Post(
        v=1, id=f"mastodon:{uri}", platform="mastodon",
        ts=_ts(_str(status, "created_at", "status"), "status.created_at"), ingested_at=ingested_at,
        author=author, text=text, url=url if isinstance(url, str) else uri,
        lang=lang if isinstance(lang, str) else None, hashtags=unique(tags), links=unique(links),
        reply_to=reply_to, reply_to_author_id=reply_author,
        quote_of=quote_of, quote_of_author_id=quote_author,
    )  # fmt: skip


def _reshare(
    booster: Mapping[str, Any], target: Mapping[str, Any], ts: str, ingested_at: str
) -> Reshare:
    author = _author(booster)
    target_uri = _str(target, "uri", "reblog")
    target_url = target.get("url")
    return Reshare(
        v=1, id=f"mastodon:{target_uri}#reblogged_by/{author.id}", platform="mastodon", ts=ts,
        ingested_at=ingested_at, author=author, target=f"mastodon:{target_uri}",
        target_url=target_url if isinstance(target_url, str) else target_uri,
        target_author_id=full_acct(_dict(target, "account", "reblog")),
    )  # fmt: skip


def status_events(status: Any, ingested_at: str, resolve: Resolve | None = None) -> list[Event]:
    """A status from a stream or a timeline: a post, a boost, or nothing if not public."""
    if not isinstance(status, dict):
        raise InvalidEvent("wrong_type", "status is not a JSON object")
    if status.get("visibility", "public") not in PUBLIC_VISIBILITY:
        return []
    reblog = status.get("reblog")
    if reblog is not None:
        if not isinstance(reblog, dict):
            raise InvalidEvent("wrong_type", "`status.reblog` is not an object")
        ts = _ts(_str(status, "created_at", "status"), "status.created_at")
        return [_reshare(_dict(status, "account", "status"), reblog, ts, ingested_at)]
    return [status_post(status, ingested_at, resolve)]


def notification_events(note: Any, ingested_at: str, resolve: Resolve | None = None) -> list[Event]:
    if not isinstance(note, dict):
        raise InvalidEvent("wrong_type", "notification is not a JSON object")
    ntype = _str(note, "type", "notification")
    status = note.get("status")
    if not isinstance(status, dict):
        return []
    if status.get("visibility", "public") not in PUBLIC_VISIBILITY:
        return []
    if ntype in ("mention", "status", "quote", "update"):
        return status_events(status, ingested_at, resolve)
    account = _dict(note, "account", "notification")
    ts = _ts(_str(note, "created_at", "notification"), "notification.created_at")
    if ntype == "reblog":
        return [_reshare(account, status, ts, ingested_at)]
    if ntype == "favourite":
        author = _author(account)
        uri = _str(status, "uri", "status")
        return [
            Reaction(
                v=1, id=f"mastodon:{uri}#favourited_by/{author.id}", platform="mastodon", ts=ts,
                ingested_at=ingested_at, author=author, target=f"mastodon:{uri}",
                target_author_id=full_acct(_dict(status, "account", "status")), reaction="like",
            )
        ]  # fmt: skip
    return []


@dataclass
class SSEMessage:
    event: str = "message"
    data: str = ""
    raw: bytes = b""


def parse_sse_block(block: bytes) -> SSEMessage | None:
    """One SSE message (the lines between blank lines); None for comment-only blocks."""
    msg = SSEMessage(raw=block)
    data: list[str] = []
    seen = False
    for line in block.decode("utf-8", "replace").splitlines():
        if not line or line.startswith(":"):
            continue  # a comment: Mastodon's heartbeat (":thump") or the opening ":)"
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            msg.event, seen = value, True
        elif name == "data":
            data.append(value)
            seen = True
    msg.data = "\n".join(data)
    return msg if seen else None


def split_sse_messages(body: bytes) -> list[bytes]:
    """A whole ``text/event-stream`` body → its message blocks (comment-only ones too)."""
    body = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return [b.strip(b"\n") for b in body.split(b"\n\n") if b.strip(b"\n")]


def sse_events(msg: SSEMessage, ingested_at: str, resolve: Resolve | None = None) -> list[Event]:
    if msg.event not in STATUS_EVENTS and msg.event != "notification":
        return []  # delete, conversation, filters_changed, announcement...: nothing to count
    try:
        payload = orjson.loads(msg.data)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("invalid_json", f"{msg.event}: {exc}") from None
    if msg.event == "notification":
        return notification_events(payload, ingested_at, resolve)
    return status_events(payload, ingested_at, resolve)


def parse_sse_event(
    block: bytes, ingested_at: str | None = None, resolve: Resolve | None = None
) -> list[Event]:
    """One raw SSE message block → canonical events; raises ``InvalidEvent`` if malformed."""
    msg = parse_sse_block(block)
    if msg is None:
        return []
    return sse_events(msg, ingested_at or format_ts(time.time()), resolve)


# --- the source ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamSpec:
    key: str
    path: str  # streaming endpoint
    params: dict[str, str]
    timeline: str  # the timeline that backfills it
    timeline_params: dict[str, str] = field(default_factory=dict)
    needs_token: bool = False


def stream_spec(key: str) -> StreamSpec:
    if key == "public":
        return StreamSpec(key, "/api/v1/streaming/public", {}, "/api/v1/timelines/public")
    if key in ("public:local", "public:remote"):
        where = key.split(":")[1]
        return StreamSpec(key, f"/api/v1/streaming/public/{where}", {},
                          "/api/v1/timelines/public", {where: "true"})  # fmt: skip
    if key.startswith("hashtag:") and len(key) > 8:
        tag = key[8:].lstrip("#").lower()
        return StreamSpec(key, "/api/v1/streaming/hashtag", {"tag": tag},
                          f"/api/v1/timelines/tag/{quote(tag, safe='')}")  # fmt: skip
    if key == "user":
        return StreamSpec(key, "/api/v1/streaming/user", {}, "/api/v1/timelines/home",
                          needs_token=True)  # fmt: skip
    raise ValueError(
        f"unknown Mastodon stream {key!r} (public, public:local, public:remote, hashtag:<tag>, user)"
    )


def _id_key(status_id: str) -> tuple[int, str]:
    # Mastodon ids are decimal strings of growing length: compare numerically.
    return (len(status_id), status_id)


@dataclass
class _Item:
    stream: str
    events: list[Event]
    rejected: list[Rejected]
    timeline_id: str | None = None  # the local id of a timeline status, for the cursor


class _Bounded(OrderedDict[str, str]):
    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def put(self, key: str, value: str) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.capacity:
            self.popitem(last=False)


class MastodonSource(Source):
    name = "mastodon"

    def __init__(self, config: Any, settings: dict[str, Any], cursor: Any = None) -> None:
        super().__init__(config, settings, cursor)
        self.opts = load_settings(MastodonSettings, self.name, settings)
        self.specs = [stream_spec(k) for k in (self.opts.streams or self._default_streams())]
        self.base_url = self.opts.url.rstrip("/")
        self.last_ids: dict[str, str] = {}
        if isinstance(cursor, dict) and isinstance(cursor.get("streams"), dict):
            self.last_ids = {k: str(v) for k, v in cursor["streams"].items() if v}
        self._token = read_secret(self.opts.token_env)
        self._uris = _Bounded(100_000)  # local status id → uri
        self._recent = RecentIds(200_000)
        self._kept = RecentIds(200_000)  # ids of posts the filter kept (their boosts pass)
        self._queue: asyncio.Queue[_Item | BaseException] = asyncio.Queue(maxsize=5000)
        self._tasks: list[asyncio.Task[None]] = []
        self._stream_last: dict[str, str] = dict(self.last_ids)  # newest id read, per stream
        self._client: httpx.AsyncClient | None = None
        mode = self.opts.filter
        self._filtering = mode == "tracked" or (mode == "auto" and not self.tracked.empty)

    def _default_streams(self) -> list[str]:
        t = self.tracked
        streams = [f"hashtag:{h}" for h in t.hashtags]
        if not streams or t.terms or t.domains or t.accounts_for("mastodon"):
            streams.append("public")
        return streams

    # -- helpers ------------------------------------------------------------------------

    def _remember(self, status: Any) -> None:
        """Learn local id → uri of every status a payload carries (for replies and quotes)."""
        if not isinstance(status, dict):
            return
        if isinstance(status.get("id"), str) and isinstance(status.get("uri"), str):
            self._uris.put(status["id"], status["uri"])
        for inner in (status.get("reblog"), (status.get("quote") or {}).get("quoted_status")):
            if isinstance(inner, dict):
                self._remember(inner)

    async def _lookup(self, status_id: str) -> None:
        """Fetch one status to learn its uri (cached; failures leave the reply unresolved)."""
        if status_id in self._uris or not self.opts.resolve_replies or self._client is None:
            return
        try:
            resp = await self._client.get(f"/api/v1/statuses/{quote(status_id, safe='')}")
            if resp.status_code == 200:
                self._remember(resp.json())
            elif resp.status_code == 429:
                self.metrics.rate_limited()
        except (httpx.HTTPError, ValueError) as exc:
            log.debug("mastodon: could not look up status %s: %s", status_id, exc)

    async def _parse(self, stream: str, event: str, data: bytes, raw: bytes) -> _Item:
        ingested = format_ts(time.time())
        try:
            if event in STATUS_EVENTS or event == "notification":
                try:
                    payload = orjson.loads(data)
                except orjson.JSONDecodeError as exc:
                    raise InvalidEvent("invalid_json", f"{event}: {exc}") from None
                status = (
                    payload.get("status")
                    if event == "notification" and isinstance(payload, dict)
                    else payload
                )
                if isinstance(status, dict):
                    self._remember(status)
                    reblog = status.get("reblog")
                    if self._filtering and isinstance(reblog, dict):
                        # A boost of a tracked post passes the filter: judge the boosted post.
                        with contextlib.suppress(InvalidEvent):
                            self._matches(status_post(reblog, ingested, self._uris.get))
                    for ref in (
                        status.get("in_reply_to_id"),
                        (status.get("quote") or {}).get("quoted_status_id"),
                    ):
                        if ref is not None:
                            await self._lookup(str(ref))
                events = (notification_events if event == "notification" else status_events)(
                    payload, ingested, self._uris.get
                )
                timeline_id = (
                    payload.get("id") if event == "update" and isinstance(payload, dict) else None
                )
                return _Item(stream, events, [], str(timeline_id) if timeline_id else None)
            return _Item(stream, [], [])
        except InvalidEvent as exc:
            return _Item(stream, [], [Rejected(raw, exc.reason, exc.detail)])

    async def _put(self, item: _Item) -> None:
        await self._queue.put(item)

    async def _get(self, path: str, params: dict[str, str]) -> Any:
        assert self._client is not None
        resp = await self._client.get(path, params=params)
        check_response(resp)
        return resp.json()

    async def _backfill(self, spec: StreamSpec) -> None:
        since = self._stream_last.get(spec.key)
        if not since or not self.opts.backfill:
            return
        for _ in range(self.opts.backfill_max_pages):
            page = await self._get(
                spec.timeline, {**spec.timeline_params, "min_id": since, "limit": "40"}
            )
            if not isinstance(page, list) or not page:
                return
            for status in sorted(page, key=lambda s: _id_key(str(s.get("id", "")))):
                raw = orjson.dumps(status)
                item = await self._parse(spec.key, "update", raw, raw)
                await self._put(item)
                since = max(since, str(status.get("id", since)), key=_id_key)
            self._stream_last[spec.key] = since
            if len(page) < 40:
                return

    async def _run_stream(self, spec: StreamSpec) -> None:
        """One stream forever: connect, backfill the gap, read; reconnect with backoff."""
        backoff = Backoff(self.opts.backoff_initial_seconds, self.opts.backoff_max_seconds)
        first = True
        while True:
            delay: float | None = None
            try:
                if not first:
                    self.metrics.reconnect()
                first = False
                assert self._client is not None
                params = spec.params
                async with self._client.stream(
                    "GET", spec.path, params=params, headers={"Accept": "text/event-stream"},
                    timeout=httpx.Timeout(10.0, read=self.opts.stall_seconds),
                ) as resp:  # fmt: skip
                    check_response(resp)
                    log.info("mastodon: stream %s connected", spec.key)
                    await self._backfill(spec)
                    await self._read_sse(spec, resp, backoff)
                log.warning("mastodon: stream %s ended by the server", spec.key)
            except RateLimited as exc:
                self.metrics.rate_limited()
                delay = exc.retry_after
                log.warning("mastodon: stream %s rate limited (retry after %s s)", spec.key, delay)
            except HTTPStatusError as exc:
                log.warning("mastodon: stream %s refused: %s", spec.key, exc)
            except (httpx.HTTPError, OSError) as exc:
                log.warning("mastodon: stream %s lost: %r", spec.key, exc)
            await asyncio.sleep(delay if delay is not None else backoff.next_delay())

    async def _read_sse(self, spec: StreamSpec, resp: httpx.Response, backoff: Backoff) -> None:
        lines: list[str] = []
        async for line in resp.aiter_lines():
            if line:
                lines.append(line)
                continue
            if not lines:
                continue
            block = "\n".join(lines).encode()
            lines = []
            msg = parse_sse_block(block)
            if msg is None:
                continue  # heartbeat
            backoff.reset()
            item = await self._parse(spec.key, msg.event, msg.data.encode(), block)
            if item.timeline_id:
                self._stream_last[spec.key] = max(
                    self._stream_last.get(spec.key, "0"), item.timeline_id, key=_id_key
                )
            await self._put(item)

    async def _guard(self, spec: StreamSpec) -> None:
        try:
            await self._run_stream(spec)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a bug: surface it through batches()
            await self._queue.put(exc)

    def _matches(self, post: Post) -> bool:
        accounts = self.tracked.accounts_for("mastodon")
        hit = (
            self.tracked.matches(
                post.text, post.hashtags, post.links, (post.author.id,), "mastodon"
            )
            or any(ref in self._kept for ref in (post.reply_to, post.quote_of) if ref)
            or any(a in accounts for a in (post.reply_to_author_id, post.quote_of_author_id) if a)
        )
        if hit:
            self._kept.seen(post.id)
        return hit

    def _keep(self, ev: Event) -> bool:
        """The client-side coarse filter: tracked posts, and boosts of them."""
        if not self._filtering or isinstance(ev, Reaction):
            return True  # favourites only come from the user stream: the account's own posts
        if isinstance(ev, Post):
            return self._matches(ev)
        if isinstance(ev, Reshare):
            accounts = self.tracked.accounts_for("mastodon")
            return ev.target in self._kept or (ev.target_author_id or "") in accounts
        return True

    def _start(self) -> None:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else None
        self._client = make_client(self.base_url, headers=headers)
        for spec in self.specs:
            if spec.needs_token and not self._token:
                raise ValueError(f"mastodon stream {spec.key!r} needs ${self.opts.token_env}")
            self._tasks.append(asyncio.create_task(self._guard(spec), name=f"mastodon:{spec.key}"))

    async def batches(self) -> AsyncIterator[Batch]:
        self._start()
        loop = asyncio.get_running_loop()
        while True:
            item = await self._queue.get()
            batch = Batch()
            deadline = loop.time() + self.opts.batch_linger_ms / 1000
            while True:
                if isinstance(item, BaseException):
                    raise item
                self._add(batch, item)
                if len(batch.events) + len(batch.rejected) >= self.opts.batch_max:
                    break
                try:
                    item = await asyncio.wait_for(
                        self._queue.get(), max(0.0, deadline - loop.time())
                    )
                except TimeoutError:
                    break
            batch.cursor = {"streams": dict(self.last_ids)}
            yield batch

    def _add(self, batch: Batch, item: _Item) -> None:
        batch.rejected += item.rejected
        for ev in item.events:
            if ev.id in self._recent or not self._keep(ev):
                continue
            self._recent.seen(ev.id)
            batch.events.append(ev)
        if item.timeline_id:
            prev = self.last_ids.get(item.stream)
            if prev is None or _id_key(item.timeline_id) > _id_key(prev):
                self.last_ids[item.stream] = item.timeline_id

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None


add_arguments, run = source_cli(MastodonSource)
