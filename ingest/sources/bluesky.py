"""Bluesky: posts, reposts and likes from Jetstream over a WebSocket.

Jetstream (``/subscribe``) streams the network's repo commits as JSON. We ask for
``app.bsky.feed.post``, ``app.bsky.feed.repost`` and ``app.bsky.feed.like`` only
(``wantedCollections``), optionally for given repos only (``wantedDids``), optionally zstd
compressed with Jetstream's dictionary (``compress=true``; the dictionary ships in
``ingest/sources/data``). The cursor is Jetstream's ``time_us`` (unix microseconds). It
is not monotonic, so on every (re)connect we rewind ``rewind_seconds`` and drop the ids we
already emitted.

Mapping (EVENTS.md): a post create is a ``post`` with id ``bluesky:<at-uri>``, author id
the repo DID; a reply's parent URI is ``reply_to`` (its DID ``reply_to_author_id``); an
``app.bsky.embed.record`` (or ``recordWithMedia``) of a post is ``quote_of``. A repost is a
``reshare`` and a like a ``reaction`` of the subject post (``target_author_id`` = the DID in
the subject URI). ``ts`` is the Jetstream ``time_us`` (when the network saw it; the
record's ``createdAt`` is set by the client and can be anything). Handles come from
Jetstream ``identity`` events when seen; follower counts are not in Jetstream and stay null.
Deletes and updates have no canonical kind and are skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

import msgspec
import orjson
import websockets
import zstandard
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ingest.backoff import Backoff, parse_retry_after
from ingest.events import Author, Event, InvalidEvent, Post, Reaction, Reshare, format_ts
from ingest.sources.base import Batch, RecentIds, Rejected, Source, load_settings
from ingest.sources.bluesky_profiles import ProfileCache
from ingest.sources.cli import source_cli
from ingest.sources.textutil import hashtags_in_text, links_in_text, unique

log = logging.getLogger(__name__)

POST = "app.bsky.feed.post"
REPOST = "app.bsky.feed.repost"
LIKE = "app.bsky.feed.like"
COLLECTIONS = (POST, REPOST, LIKE)
DICTIONARY = Path(__file__).parent / "data" / "jetstream_v1_zstd_dictionary.bin"
PUBLIC_JETSTREAM = "wss://jetstream2.us-east.bsky.network/subscribe"


class BlueskySettings(msgspec.Struct, forbid_unknown_fields=True):
    url: str = PUBLIC_JETSTREAM
    enabled: bool = True
    compress: bool = False
    # Server-side filter: only these repos (DIDs); empty = the whole network.
    wanted_dids: list[str] = []
    # Client-side coarse filter: "auto" filters by the tracked terms when any are configured.
    filter: Literal["auto", "tracked", "none"] = "auto"
    rewind_seconds: float = 5.0
    batch_max: int = 500
    batch_linger_ms: int = 200
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    open_timeout_seconds: float = 10.0
    max_message_bytes: int = 1_000_000
    # Optional follower counts (Jetstream has none): an AppView base URL such as
    # https://public.api.bsky.app; empty = followers stay null.
    profile_url: str = ""
    profile_cache_seconds: float = 3600.0
    profile_requests_per_second: float = 5.0


# --- pure parsing ------------------------------------------------------------------------


def did_of(uri: str) -> str | None:
    """``at://did:plc:x/coll/rkey`` → ``did:plc:x`` (None if it is not an at-uri)."""
    if not uri.startswith("at://"):
        return None
    authority = uri[5:].split("/", 1)[0]
    return authority if authority.startswith("did:") else None


def collection_of(uri: str) -> str | None:
    parts = uri[5:].split("/") if uri.startswith("at://") else []
    return parts[1] if len(parts) >= 3 else None


def post_url(uri: str) -> str | None:
    """The bsky.app link of a post at-uri (by DID, which never changes, unlike handles)."""
    parts = uri[5:].split("/") if uri.startswith("at://") else []
    if len(parts) != 3 or parts[1] != POST:
        return None
    return f"https://bsky.app/profile/{parts[0]}/post/{parts[2]}"


def _get(obj: Mapping[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    value = obj.get(key)
    if value is None:
        raise InvalidEvent("missing_field", f"`{where}.{key}` is missing")
    if not isinstance(value, typ) or isinstance(value, bool) and typ is int:
        raise InvalidEvent("wrong_type", f"`{where}.{key}` is {type(value).__name__}")
    return value


def _subject_uri(record: Mapping[str, Any], where: str) -> str:
    subject = _get(record, "subject", dict, where)
    return str(_get(subject, "uri", str, where + ".subject"))


def _links_and_tags(record: Mapping[str, Any], text: str) -> tuple[list[str], list[str]]:
    links: list[str] = []
    tags: list[str] = []
    covered: list[tuple[int, int]] = []
    for facet in record.get("facets") or ():
        if not isinstance(facet, dict):
            continue
        for feature in facet.get("features") or ():
            if not isinstance(feature, dict):
                continue
            ftype = feature.get("$type")
            if ftype == "app.bsky.richtext.facet#link" and isinstance(feature.get("uri"), str):
                links.append(feature["uri"])
                index = facet.get("index") or {}
                start, end = index.get("byteStart"), index.get("byteEnd")
                if isinstance(start, int) and isinstance(end, int):
                    covered.append((start, end))
            elif ftype == "app.bsky.richtext.facet#tag" and isinstance(feature.get("tag"), str):
                tags.append(feature["tag"].lstrip("#").lower())
    for tag in record.get("tags") or ():  # post-level "outline" tags
        if isinstance(tag, str):
            tags.append(tag.lstrip("#").lower())
    embed = record.get("embed")
    if isinstance(embed, dict):
        media = (
            embed.get("media") if embed.get("$type") == "app.bsky.embed.recordWithMedia" else embed
        )
        external = media.get("external") if isinstance(media, dict) else None
        if isinstance(external, dict) and isinstance(external.get("uri"), str):
            links.append(external["uri"])
    # Link facets already carry the full URL of the (often shortened) text they cover;
    # look for other URLs only in the text outside them.
    if covered:
        raw = text.encode("utf-8")
        keep, pos = [], 0
        for start, end in sorted(covered):
            keep.append(raw[pos:start])
            pos = max(pos, end)
        keep.append(raw[pos:])
        rest = b" ".join(keep).decode("utf-8", "ignore")
    else:
        rest = text
    links += links_in_text(rest)
    tags += hashtags_in_text(text)
    return unique(links), unique(tags)


def _quote_uri(record: Mapping[str, Any]) -> str | None:
    embed = record.get("embed")
    if not isinstance(embed, dict):
        return None
    etype = embed.get("$type")
    ref: Any = None
    if etype == "app.bsky.embed.record":
        ref = embed.get("record")
    elif etype == "app.bsky.embed.recordWithMedia":
        inner = embed.get("record")
        ref = inner.get("record") if isinstance(inner, dict) else None
    uri = ref.get("uri") if isinstance(ref, dict) else None
    # Only posts are quotes; embedded lists or feed generators are not.
    return uri if isinstance(uri, str) and collection_of(uri) == POST else None


def message_events(
    msg: Any, ingested_at: str, handles: Mapping[str, str] | None = None
) -> list[Event]:
    """The canonical events of one decoded Jetstream message (usually zero or one)."""
    if not isinstance(msg, dict):
        raise InvalidEvent("wrong_type", "message is not a JSON object")
    did = _get(msg, "did", str, "$")
    time_us = _get(msg, "time_us", int, "$")
    kind = _get(msg, "kind", str, "$")
    if kind != "commit":
        return []
    commit = _get(msg, "commit", dict, "$")
    collection = _get(commit, "collection", str, "$.commit")
    operation = _get(commit, "operation", str, "$.commit")
    if collection not in COLLECTIONS or operation != "create":
        return []
    rkey = _get(commit, "rkey", str, "$.commit")
    record = _get(commit, "record", dict, "$.commit")
    uri = f"at://{did}/{collection}/{rkey}"
    ts = format_ts(time_us / 1_000_000)
    author = Author(id=did, handle=(handles or {}).get(did), followers=None)
    if collection == POST:
        text = _get(record, "text", str, "$.commit.record") if "text" in record else ""
        reply = record.get("reply")
        parent = reply.get("parent") if isinstance(reply, dict) else None
        parent_uri = parent.get("uri") if isinstance(parent, dict) else None
        if reply is not None and not isinstance(parent_uri, str):
            raise InvalidEvent("missing_field", "`$.commit.record.reply.parent.uri` is missing")
        quote = _quote_uri(record)
        langs = record.get("langs")
        lang = langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str) else None
        links, tags = _links_and_tags(record, text)
        return [
            Post(
                v=1, id=f"bluesky:{uri}", platform="bluesky", ts=ts, ingested_at=ingested_at,
                author=author, text=text, url=post_url(uri), lang=lang, hashtags=tags,
                links=links,
                reply_to=f"bluesky:{parent_uri}" if parent_uri else None,
                reply_to_author_id=did_of(parent_uri) if parent_uri else None,
                quote_of=f"bluesky:{quote}" if quote else None,
                quote_of_author_id=did_of(quote) if quote else None,
            )
        ]  # fmt: skip
    subject = _subject_uri(record, "$.commit.record")
    if collection_of(subject) != POST:
        return []  # a like of a feed generator or a list: not a post engagement
    if collection == REPOST:
        return [
            Reshare(
                v=1, id=f"bluesky:{uri}", platform="bluesky", ts=ts, ingested_at=ingested_at,
                author=author, target=f"bluesky:{subject}", target_url=post_url(subject),
                target_author_id=did_of(subject),
            )
        ]  # fmt: skip
    return [
        Reaction(
            v=1, id=f"bluesky:{uri}", platform="bluesky", ts=ts, ingested_at=ingested_at,
            author=author, target=f"bluesky:{subject}", target_author_id=did_of(subject),
            reaction="like",
        )
    ]  # fmt: skip


def decode_message(raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("invalid_json", str(exc)) from None


def parse_jetstream(
    raw: bytes | str, ingested_at: str | None = None, handles: Mapping[str, str] | None = None
) -> list[Event]:
    """One Jetstream JSON message → canonical events; raises ``InvalidEvent`` if malformed."""
    return message_events(decode_message(raw), ingested_at or format_ts(time.time()), handles)


def load_dictionary(path: Path = DICTIONARY) -> zstandard.ZstdDecompressor:
    return zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(path.read_bytes()))


# --- the source ----------------------------------------------------------------------------


class _Handles(OrderedDict[str, str]):
    """DID → handle from identity events, bounded."""

    def __init__(self, capacity: int = 200_000) -> None:
        super().__init__()
        self.capacity = capacity

    def remember(self, did: str, handle: str) -> None:
        self[did] = handle
        self.move_to_end(did)
        if len(self) > self.capacity:
            self.popitem(last=False)


class BlueskySource(Source):
    name = "bluesky"

    def __init__(self, config: Any, settings: dict[str, Any], cursor: Any = None) -> None:
        super().__init__(config, settings, cursor)
        self.opts = load_settings(BlueskySettings, self.name, settings)
        self._recent = RecentIds(200_000)
        self._kept_posts = RecentIds(200_000)
        self._handles = _Handles()
        self._decompressor = load_dictionary() if self.opts.compress else None
        self._backoff = Backoff(self.opts.backoff_initial_seconds, self.opts.backoff_max_seconds)
        self.last_time_us: int | None = None
        if isinstance(cursor, dict) and isinstance(cursor.get("time_us"), int):
            self.last_time_us = cursor["time_us"]
        mode = self.opts.filter
        self._filtering = mode == "tracked" or (mode == "auto" and not self.tracked.empty)
        self._acc = Batch()
        self._acc_messages = 0
        self._profiles: ProfileCache | None = None

    # The URL of one connection attempt.
    def subscribe_url(self) -> str:
        query: list[tuple[str, str]] = [("wantedCollections", c) for c in COLLECTIONS]
        query += [("wantedDids", d) for d in self.opts.wanted_dids]
        if self.last_time_us is not None:
            rewind = int(self.opts.rewind_seconds * 1_000_000)
            query.append(("cursor", str(max(0, self.last_time_us - rewind))))
        if self.opts.compress:
            query.append(("compress", "true"))
        sep = "&" if "?" in self.opts.url else "?"
        return self.opts.url + sep + urlencode(query)

    def _keep(self, ev: Event) -> bool:
        """The client-side coarse filter: tracked posts and engagement with them."""
        if not self._filtering:
            return True
        accounts = self.tracked.accounts_for("bluesky")
        if isinstance(ev, Post):
            hit = (
                self.tracked.matches(
                    ev.text, ev.hashtags, ev.links, (ev.author.id, ev.author.handle), "bluesky"
                )
                or any(
                    ref is not None and (ref in self._kept_posts)
                    for ref in (ev.reply_to, ev.quote_of)
                )
                or any(a in accounts for a in (ev.reply_to_author_id, ev.quote_of_author_id) if a)
            )
            if hit:
                self._kept_posts.seen(ev.id)
            return hit
        if isinstance(ev, Reshare | Reaction):
            return ev.target in self._kept_posts or (ev.target_author_id or "") in accounts
        return True

    def _handle(self, raw: str | bytes) -> None:
        """Decode one frame into the batch being built."""
        self._acc_messages += 1
        if isinstance(raw, bytes) and self._decompressor is not None:
            try:
                raw = self._decompressor.decompressobj().decompress(raw)
            except zstandard.ZstdError as exc:
                self._acc.rejected.append(Rejected(raw, "decompress_failed", str(exc)))
                return
        data = raw.encode() if isinstance(raw, str) else raw
        try:
            msg = decode_message(data)
            if isinstance(msg, dict) and isinstance(msg.get("time_us"), int):
                t = msg["time_us"]
                if self.last_time_us is None or t > self.last_time_us:
                    self.last_time_us = t
            if isinstance(msg, dict) and msg.get("kind") == "identity":
                ident = msg.get("identity") or {}
                if isinstance(ident.get("handle"), str) and isinstance(ident.get("did"), str):
                    self._handles.remember(ident["did"], ident["handle"])
            events = message_events(msg, format_ts(time.time()), self._handles)
        except InvalidEvent as exc:
            self._acc.rejected.append(Rejected(data, exc.reason, exc.detail))
            return
        for ev in events:
            if ev.id in self._recent or not self._keep(ev):
                continue
            self._recent.seen(ev.id)
            self._acc.events.append(ev)

    def _take(self) -> Batch | None:
        if not self._acc_messages:
            return None
        batch = self._acc
        if self.last_time_us is not None:
            batch.cursor = {"time_us": self.last_time_us}
        self._acc, self._acc_messages = Batch(), 0
        return batch

    async def _read_batch(self, ws: ClientConnection) -> Batch | None:
        deadline: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                async with asyncio.timeout(timeout):
                    raw = await ws.recv()  # cancellation-safe in websockets' asyncio client
            except TimeoutError:
                return self._take()
            self._handle(raw)
            if deadline is None:
                deadline = loop.time() + self.opts.batch_linger_ms / 1000
            if len(self._acc.events) + len(self._acc.rejected) >= self.opts.batch_max:
                return self._take()

    async def _finish(self, batch: Batch) -> Batch:
        if self.opts.profile_url and batch.events:
            if self._profiles is None:
                self._profiles = ProfileCache(
                    self.opts.profile_url, self.metrics, self.opts.profile_cache_seconds,
                    self.opts.profile_requests_per_second,
                )  # fmt: skip
            await self._profiles.enrich(batch.events)
        return batch

    async def aclose(self) -> None:
        if self._profiles is not None:
            await self._profiles.aclose()
            self._profiles = None

    async def batches(self) -> AsyncIterator[Batch]:
        while True:
            delay: float | None = None
            try:
                url = self.subscribe_url()
                log.info("bluesky: connecting to %s", url.split("?", 1)[0])
                async with websockets.connect(
                    url,
                    max_size=self.opts.max_message_bytes,
                    open_timeout=self.opts.open_timeout_seconds,
                    compression=None,
                ) as ws:
                    while True:
                        batch = await self._read_batch(ws)
                        if batch is not None:
                            self._backoff.reset()
                            yield await self._finish(batch)
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status == 429:
                    self.metrics.rate_limited()
                    delay = parse_retry_after(exc.response.headers.get("Retry-After"))
                log.warning("bluesky: handshake refused with HTTP %s", status)
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as exc:
                log.warning("bluesky: connection lost (%s)", exc)
            pending = self._take()  # what arrived before the drop is not lost
            if pending is not None:
                yield await self._finish(pending)
            self.metrics.reconnect()
            wait = delay if delay is not None else self._backoff.next_delay()
            await asyncio.sleep(wait)


add_arguments, run = source_cli(BlueskySource)
