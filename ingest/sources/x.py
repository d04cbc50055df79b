"""X (Twitter): tweets, quotes, replies and retweets from the API v2 filtered stream.

``GET /2/tweets/search/stream`` is a chunked HTTP response of newline-delimited JSON: one
tweet per line (``data``, ``includes``, ``matching_rules``), ``\\r\\n`` keep-alives every
~20 s, and error lines such as ``operational-disconnect`` before the server closes. The
bearer token comes from ``$X_BEARER_TOKEN`` (or ``$X_BEARER_TOKEN_FILE``) and is never
logged. The stream's rules are managed from the tracked terms (one or more rules per
brand, tagged ``ripple:<brand>``; rules with other tags are left alone).

Reconnects follow X's documented schedules: network errors back off linearly by 250 ms up
to 16 s; HTTP errors exponentially from 5 s up to 320 s; 429 exponentially from 1 minute
(or as long as ``Retry-After`` / ``x-rate-limit-reset`` say). The stream has no cursor;
where the plan allows it, ``backfill_minutes`` recovers what a disconnection missed, and
ids already emitted (X also delivers duplicates) are dropped.

Mapping (EVENTS.md): ids ``x:<tweet id>``, author id the user id, handle and follower count
from ``includes.users``; ``retweeted`` → ``reshare`` of the referenced tweet; ``quoted`` →
``quote_of``; ``replied_to`` → ``reply_to`` (author from ``in_reply_to_user_id`` or the
included tweet); hashtags and links (unwound/expanded, media and quote links left out)
from ``entities``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import orjson

from ingest.backoff import Backoff, RateLimited
from ingest.config import Config, read_secret
from ingest.events import Author, Event, InvalidEvent, Post, Reshare, format_ts, parse_ts
from ingest.http import HTTPStatusError, check_response, make_client
from ingest.sources.base import Batch, RecentIds, Rejected, Source, load_settings
from ingest.sources.cli import source_cli
from ingest.sources.textutil import unique

log = logging.getLogger(__name__)

STREAM = "/2/tweets/search/stream"
RULES = "/2/tweets/search/stream/rules"
STREAM_PARAMS = {
    "expansions": "author_id,referenced_tweets.id,referenced_tweets.id.author_id",
    "tweet.fields": "author_id,created_at,lang,entities,referenced_tweets,in_reply_to_user_id,conversation_id",
    "user.fields": "public_metrics,username",
}


class XSettings(msgspec.Struct, forbid_unknown_fields=True):
    url: str = "https://api.x.com"
    enabled: bool = True
    token_env: str = "X_BEARER_TOKEN"
    manage_rules: bool = True
    rule_max_length: int = 512  # 1024 on Pro/Enterprise
    rule_tag_prefix: str = "ripple:"
    backfill_minutes: int = 0  # 1-5 where the plan allows it; 0 = never ask
    batch_max: int = 500
    batch_linger_ms: int = 200
    # X sends a keep-alive every 20 s; longer silence means a stalled connection.
    stall_seconds: float = 30.0
    # X's documented reconnect schedules (scaled down in tests).
    network_backoff_step_seconds: float = 0.25
    network_backoff_max_seconds: float = 16.0
    http_backoff_initial_seconds: float = 5.0
    http_backoff_max_seconds: float = 320.0
    rate_limit_backoff_initial_seconds: float = 60.0
    rate_limit_backoff_max_seconds: float = 960.0


# --- pure parsing ------------------------------------------------------------------------


def tweet_url(tweet_id: str, username: str | None) -> str:
    return (
        f"https://x.com/{username}/status/{tweet_id}"
        if username
        else f"https://x.com/i/web/status/{tweet_id}"
    )


def _str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        raise InvalidEvent("missing_field", f"`{where}.{key}` is missing")
    if not isinstance(value, str):
        raise InvalidEvent("wrong_type", f"`{where}.{key}` is {type(value).__name__}")
    return value


def _links(entities: Mapping[str, Any], quoted: str | None) -> list[str]:
    out: list[str] = []
    for u in entities.get("urls") or ():
        if not isinstance(u, dict):
            continue
        display = str(u.get("display_url") or "")
        if u.get("media_key") or display.startswith(("pic.twitter.com", "pic.x.com")):
            continue  # an attached photo or video, not a link
        link = u.get("unwound_url") or u.get("expanded_url") or u.get("url")
        if not isinstance(link, str):
            continue
        if quoted and link.rstrip("/").endswith(f"/status/{quoted}"):
            continue  # the quoted tweet itself (it is quote_of)
        out.append(link)
    return unique(out)


def tweet_events(doc: Any, ingested_at: str) -> list[Event]:
    """One decoded stream line (``data`` + ``includes``) → its canonical event."""
    if not isinstance(doc, dict):
        raise InvalidEvent("wrong_type", "line is not a JSON object")
    data = doc.get("data")
    if data is None:
        return []  # keep-alive, error or system line
    if not isinstance(data, dict):
        raise InvalidEvent("wrong_type", "`$.data` is not an object")
    tid = _str(data, "id", "$.data")
    author_id = _str(data, "author_id", "$.data")
    created = _str(data, "created_at", "$.data")
    try:
        ts = format_ts(parse_ts(created))
    except ValueError:
        raise InvalidEvent("invalid_ts", f"`$.data.created_at`: {created[:40]!r}") from None
    inc = doc.get("includes")
    includes: dict[str, Any] = inc if isinstance(inc, dict) else {}
    users = {u.get("id"): u for u in includes.get("users") or () if isinstance(u, dict)}
    tweets = {t.get("id"): t for t in includes.get("tweets") or () if isinstance(t, dict)}
    user = users.get(author_id) or {}
    metrics = user.get("public_metrics") or {}
    followers = metrics.get("followers_count") if isinstance(metrics, dict) else None
    author = Author(
        id=author_id,
        handle=user.get("username") if isinstance(user.get("username"), str) else None,
        followers=followers if isinstance(followers, int) and followers >= 0 else None,
    )
    refs: dict[str, str] = {}
    for ref in data.get("referenced_tweets") or ():
        if (
            isinstance(ref, dict)
            and isinstance(ref.get("type"), str)
            and isinstance(ref.get("id"), str)
        ):
            refs.setdefault(ref["type"], ref["id"])

    def ref_author(ref_id: str | None) -> str | None:
        t = tweets.get(ref_id) if ref_id else None
        a = t.get("author_id") if isinstance(t, dict) else None
        return a if isinstance(a, str) else None

    url = tweet_url(tid, author.handle)
    if "retweeted" in refs:
        target = refs["retweeted"]
        target_author = ref_author(target)
        target_user = users.get(target_author) if target_author else None
        target_name = target_user.get("username") if isinstance(target_user, dict) else None
        return [
            Reshare(
                v=1, id=f"x:{tid}", platform="x", ts=ts, ingested_at=ingested_at, author=author,
                target=f"x:{target}", target_url=tweet_url(target, target_name),
                target_author_id=target_author,
            )
        ]  # fmt: skip
    ent = data.get("entities")
    entities: dict[str, Any] = ent if isinstance(ent, dict) else {}
    tags = [
        h["tag"].lower()
        for h in entities.get("hashtags") or ()
        if isinstance(h, dict) and isinstance(h.get("tag"), str)
    ]
    reply = refs.get("replied_to")
    reply_author = data.get("in_reply_to_user_id")
    quoted = refs.get("quoted")
    text = data.get("text")
    lang = data.get("lang")
    return [
        Post(
            v=1, id=f"x:{tid}", platform="x", ts=ts, ingested_at=ingested_at, author=author,
            text=text if isinstance(text, str) else "", url=url,
            lang=lang if isinstance(lang, str) else None, hashtags=unique(tags),
            links=_links(entities, quoted),
            reply_to=f"x:{reply}" if reply else None,
            reply_to_author_id=(reply_author if isinstance(reply_author, str) else ref_author(reply)) if reply else None,
            quote_of=f"x:{quoted}" if quoted else None,
            quote_of_author_id=ref_author(quoted),
        )
    ]  # fmt: skip


def decode_line(raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("invalid_json", str(exc)) from None


def parse_stream_line(raw: bytes | str, ingested_at: str | None = None) -> list[Event]:
    """One line of the filtered stream → canonical events; raises ``InvalidEvent``."""
    if not raw.strip():
        return []  # keep-alive
    return tweet_events(decode_line(raw), ingested_at or format_ts(time.time()))


def is_disconnect(doc: Any) -> bool:
    """An ``operational-disconnect`` (or other connection-level) error line."""
    if not isinstance(doc, dict) or "data" in doc:
        return False
    for err in doc.get("errors") or ():
        if isinstance(err, dict) and (
            "disconnect" in str(err.get("title", "")).lower()
            or "disconnect" in str(err.get("type", "")).lower()
            or err.get("disconnect_type")
        ):
            return True
    return False


# --- rules -----------------------------------------------------------------------------


def _clause(term: str) -> str:
    term = term.replace('"', "")
    return f'"{term}"' if any(c.isspace() for c in term) or "-" in term else term


def build_rules(
    config: Config, max_length: int = 512, prefix: str = "ripple:"
) -> list[dict[str, str]]:
    """One rule per brand (split when too long): its terms, #hashtags, url:domains and
    accounts (from:, @), with its campaigns' terms and hashtags."""
    rules: list[dict[str, str]] = []
    for brand in config.brands:
        clauses: list[str] = [_clause(t) for t in brand.terms if t.strip()]
        clauses += [f"#{h.lstrip('#')}" for h in brand.hashtags if h.strip("# ")]
        clauses += [f'url:"{d}"' for d in brand.domains if d.strip()]
        for account in brand.accounts.get("x", []):
            name = account.lstrip("@").strip()
            if name:
                clauses += [f"from:{name}", f"@{name}", f"retweets_of:{name}"]
        for c in config.campaigns:
            if c.brand == brand.name:
                clauses += [_clause(t) for t in c.terms if t.strip()]
                clauses += [f"#{h.lstrip('#')}" for h in c.hashtags if h.strip("# ")]
        clauses = unique(clauses)
        chunks: list[list[str]] = [[]]
        for clause in clauses:
            candidate = chunks[-1] + [clause]
            if chunks[-1] and len("(" + " OR ".join(candidate) + ")") > max_length:
                chunks.append([clause])
            else:
                chunks[-1] = candidate
        for i, chunk in enumerate(c for c in chunks if c):
            value = " OR ".join(chunk)
            value = f"({value})" if len(chunk) > 1 else value
            tag = f"{prefix}{brand.name}" + (f"#{i + 1}" if i else "")
            rules.append({"value": value, "tag": tag})
    return rules


# --- the source ----------------------------------------------------------------------------


@dataclass
class _Item:
    events: list[Event]
    rejected: list[Rejected]


class _Disconnect(Exception):
    """The server announced it is closing the stream."""


class XSource(Source):
    name = "x"

    def __init__(self, config: Config, settings: dict[str, Any], cursor: Any = None) -> None:
        super().__init__(config, settings, cursor)
        self.opts = o = load_settings(XSettings, self.name, settings)
        self.newest_id: str | None = None
        if isinstance(cursor, dict) and isinstance(cursor.get("newest_id"), str):
            self.newest_id = cursor["newest_id"]
        self._token = read_secret(o.token_env)
        self._net = Backoff(o.network_backoff_step_seconds, o.network_backoff_max_seconds,
                            jitter=False, linear=True)  # fmt: skip
        self._http = Backoff(
            o.http_backoff_initial_seconds, o.http_backoff_max_seconds, jitter=False
        )
        self._limited = Backoff(o.rate_limit_backoff_initial_seconds,
                                o.rate_limit_backoff_max_seconds, jitter=False)  # fmt: skip
        self._recent = RecentIds(200_000)
        self._queue: asyncio.Queue[_Item | BaseException] = asyncio.Queue(maxsize=5000)
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self.connections = 0
        self.waits: list[tuple[str, float]] = []  # (why, seconds) of every reconnect wait

    async def sync_rules(self) -> None:
        """Make the stream's ``ripple:`` rules equal to the tracked terms."""
        assert self._client is not None
        want = build_rules(self.config, self.opts.rule_max_length, self.opts.rule_tag_prefix)
        resp = await self._client.get(RULES)
        check_response(resp)
        have = [r for r in resp.json().get("data") or () if isinstance(r, dict)]
        ours = [r for r in have if str(r.get("tag", "")).startswith(self.opts.rule_tag_prefix)]
        wanted = {(r["value"], r["tag"]) for r in want}
        stale = [r["id"] for r in ours if (r.get("value"), r.get("tag")) not in wanted]
        present = {(r.get("value"), r.get("tag")) for r in ours}
        missing = [r for r in want if (r["value"], r["tag"]) not in present]
        if stale:
            resp = await self._client.post(RULES, json={"delete": {"ids": stale}})
            check_response(resp)
        if missing:
            resp = await self._client.post(RULES, json={"add": missing})
            check_response(resp)
        log.info("x: rules synced (%d kept, %d added, %d deleted)",
                 len(ours) - len(stale), len(missing), len(stale))  # fmt: skip

    def _params(self) -> dict[str, str]:
        params = dict(STREAM_PARAMS)
        # After a disconnection (or a restart with a cursor), ask X to replay what we missed.
        if self.opts.backfill_minutes > 0 and (self.connections > 0 or self.newest_id):
            params["backfill_minutes"] = str(min(5, self.opts.backfill_minutes))
        return params

    def _parse(self, line: bytes) -> _Item:
        try:
            doc = decode_line(line)
            if is_disconnect(doc):
                raise _Disconnect(str(doc.get("errors"))[:300])
            return _Item(tweet_events(doc, format_ts(time.time())), [])
        except InvalidEvent as exc:
            return _Item([], [Rejected(line, exc.reason, exc.detail)])

    async def _wait(self, why: str, seconds: float) -> None:
        self.waits.append((why, seconds))
        log.warning("x: %s; reconnecting in %.2f s", why, seconds)
        await asyncio.sleep(seconds)

    async def _run(self) -> None:
        assert self._client is not None
        rules_synced = not self.opts.manage_rules
        while True:
            try:
                if not rules_synced:
                    await self.sync_rules()
                    rules_synced = True
                if self.connections:
                    self.metrics.reconnect()
                params = self._params()
                self.connections += 1
                async with self._client.stream(
                    "GET", STREAM, params=params,
                    timeout=httpx.Timeout(10.0, read=self.opts.stall_seconds),
                ) as resp:  # fmt: skip
                    check_response(resp)
                    self._http.reset()
                    self._limited.reset()
                    async for line in resp.aiter_lines():
                        self._net.reset()
                        if not line.strip():
                            continue  # keep-alive
                        await self._queue.put(self._parse(line.encode()))
                await self._wait("stream ended", self._net.next_delay())
            except _Disconnect as exc:
                await self._wait(f"operational disconnect ({exc})", self._net.next_delay())
            except RateLimited as exc:
                self.metrics.rate_limited()
                backoff = self._limited.next_delay()
                await self._wait(
                    "rate limited (429)",
                    exc.retry_after if exc.retry_after is not None else backoff,
                )
            except HTTPStatusError as exc:
                await self._wait(f"HTTP error {exc.status}", self._http.next_delay())
            except (httpx.HTTPError, OSError) as exc:
                await self._wait(f"network error {exc!r}", self._net.next_delay())

    async def _guard(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a bug: surface it through batches()
            await self._queue.put(exc)

    async def batches(self) -> AsyncIterator[Batch]:
        if not self._token:
            raise ValueError(
                f"x: no bearer token (set ${self.opts.token_env} or ${self.opts.token_env}_FILE)"
            )
        self._client = make_client(self.opts.url, bearer=self._token)
        self._task = asyncio.create_task(self._guard(), name="x:stream")
        loop = asyncio.get_running_loop()
        while True:
            item = await self._queue.get()
            batch = Batch()
            deadline = loop.time() + self.opts.batch_linger_ms / 1000
            while True:
                if isinstance(item, BaseException):
                    raise item
                batch.rejected += item.rejected
                for ev in item.events:
                    if not self._recent.seen(ev.id):
                        batch.events.append(ev)
                        tid = ev.id[2:]
                        if self.newest_id is None or (len(tid), tid) > (
                            len(self.newest_id),
                            self.newest_id,
                        ):
                            self.newest_id = tid
                if len(batch.events) + len(batch.rejected) >= self.opts.batch_max:
                    break
                try:
                    item = await asyncio.wait_for(
                        self._queue.get(), max(0.0, deadline - loop.time())
                    )
                except TimeoutError:
                    break
            if self.newest_id:
                batch.cursor = {"newest_id": self.newest_id}
            yield batch

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None


add_arguments, run = source_cli(XSource)
