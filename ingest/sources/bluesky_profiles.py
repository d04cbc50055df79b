"""Optional follower counts for Bluesky authors: ``app.bsky.actor.getProfiles``, cached.

Jetstream carries no follower counts. When ``profile_url`` is set (e.g.
``https://public.api.bsky.app``), authors of a batch whose count is unknown are looked up
25 at a time, cached for ``profile_cache_seconds``, at most ``profile_requests_per_second``;
a 429 pauses lookups for its ``Retry-After`` and any failure just leaves followers null.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable

import httpx

from ingest.backoff import ratelimit_wait
from ingest.events import Event, Post, Reaction, Reshare
from ingest.http import make_client
from ingest.sources.base import SourceMetrics

log = logging.getLogger(__name__)

GET_PROFILES = "/xrpc/app.bsky.actor.getProfiles"
MAX_ACTORS = 25  # the endpoint's limit


class ProfileCache:
    def __init__(
        self,
        base_url: str,
        metrics: SourceMetrics,
        ttl: float = 3600.0,
        rate: float = 5.0,
        capacity: int = 100_000,
    ) -> None:
        self.metrics = metrics
        self.ttl = ttl
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.capacity = capacity
        self._client = make_client(base_url, read_timeout=10.0)
        self._cache: OrderedDict[str, tuple[float, str | None, int | None]] = OrderedDict()
        self._next_request = 0.0
        self._paused_until = 0.0
        self.requests = 0

    def _get(self, did: str, now: float) -> tuple[str | None, int | None] | None:
        hit = self._cache.get(did)
        if hit is None or hit[0] < now:
            return None
        return hit[1], hit[2]

    def _put(self, did: str, handle: str | None, followers: int | None, now: float) -> None:
        self._cache[did] = (now + self.ttl, handle, followers)
        self._cache.move_to_end(did)
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)

    async def _fetch(self, dids: list[str]) -> None:
        loop = asyncio.get_running_loop()
        wait = self._next_request - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._next_request = loop.time() + self.interval
        self.requests += 1
        resp = await self._client.get(GET_PROFILES, params=[("actors", d) for d in dids])
        now = time.time()
        if resp.status_code == 429:
            self.metrics.rate_limited()
            retry = ratelimit_wait(resp.headers)
            self._paused_until = now + (retry if retry is not None else 60.0)
            return
        if resp.status_code != 200:
            log.debug("bluesky: getProfiles answered %s", resp.status_code)
            return
        for p in resp.json().get("profiles") or ():
            if isinstance(p, dict) and isinstance(p.get("did"), str):
                count = p.get("followersCount")
                handle = p.get("handle")
                self._put(
                    p["did"],
                    handle if isinstance(handle, str) else None,
                    count if isinstance(count, int) and count >= 0 else None,
                    now,
                )

    async def enrich(self, events: Iterable[Event]) -> None:
        """Fill ``author.followers`` (and a missing handle) where a profile is known."""
        evs = [e for e in events if isinstance(e, Post | Reshare | Reaction)]
        now = time.time()
        if now >= self._paused_until:
            missing = list(
                dict.fromkeys(e.author.id for e in evs if self._get(e.author.id, now) is None)
            )  # type: ignore[union-attr]
            for i in range(0, len(missing), MAX_ACTORS):
                try:
                    await self._fetch(missing[i : i + MAX_ACTORS])
                except (httpx.HTTPError, ValueError) as exc:
                    log.debug("bluesky: getProfiles failed: %r", exc)
                    break
                if time.time() < self._paused_until:
                    break
        now = time.time()
        for e in evs:
            author = e.author
            hit = self._get(author.id, now)
            if hit is not None:
                author.followers = hit[1] if author.followers is None else author.followers
                author.handle = author.handle or hit[0]

    async def aclose(self) -> None:
        await self._client.aclose()
