"""One HTTP request loop for the polling sources (Reddit, Hacker News, RSS).

``Poller.request`` returns the first usable answer (2xx or 304) and absorbs everything
transient on the way: dropped connections and timeouts and 5xx answers (exponential
backoff with jitter, counted as reconnects), 429s (``Retry-After`` when given, else the
backoff; counted as rate-limit waits). After every answer it reads the rate-limit headers
(``X-Ratelimit-Remaining``/``-Reset``/``-Used``) and paces the next request so the quota
is spread over its window instead of exhausted. Other 4xx answers raise ``HTTPStatusError``
for the source to decide; a 401 first gives the source's ``refresh`` hook a chance.

Bounds, so that no server can hold a source: every wait a server asks for (``Retry-After``,
rate-limit resets) is capped at ``MAX_WAIT_SECONDS`` (1 h); each attempt, body included,
ends after ``attempt_seconds`` (a server that accepts and never answers, or trickles); the
body is read with a byte cap after decompression (``ingest.http.read_capped``); and with
``budget_seconds`` / ``max_attempts`` set (RSS: one poller per feed) a request that still
has no usable answer raises ``RetriesExhausted``, so the source skips it until its next
turn instead of retrying forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from ingest.backoff import Backoff, ratelimit_wait
from ingest.http import HTTPStatusError, read_capped
from ingest.sources.base import SourceMetrics

log = logging.getLogger(__name__)

_RETRY_STATUS = frozenset({408, 500, 502, 503, 504, 520, 521, 522, 523, 524})
# Below this many requests left in the window, requests are spread evenly over what remains.
_PACE_BELOW = 10.0
# No server gets to park a source for longer than this (a Retry-After of a day is a typo).
MAX_WAIT_SECONDS = 3600.0
MAX_BODY_BYTES = 16 * 1024 * 1024


class RetriesExhausted(HTTPStatusError):
    """No usable answer within the request's retry budget: skip it until its next turn."""

    def __init__(self, detail: str) -> None:
        super().__init__(0, f"retry budget spent: {detail}")


def pacing_delay(headers: Mapping[str, str], now: float | None = None) -> float:
    """Seconds to wait before the next request, from an answer's rate-limit headers."""
    wait = ratelimit_wait(headers, now)
    if wait is not None:
        return min(wait, MAX_WAIT_SECONDS)
    remaining, reset = headers.get("X-Ratelimit-Remaining"), headers.get("X-Ratelimit-Reset")
    if remaining is None or reset is None:
        return 0.0
    try:
        left, window = float(remaining), float(reset)
    except ValueError:
        return 0.0
    if left >= _PACE_BELOW or window <= 0:
        return 0.0
    return min(window / max(left, 1.0), MAX_WAIT_SECONDS)


class Poller:
    """Retries one request until it gets an answer the source can use."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        metrics: SourceMetrics,
        *,
        backoff: Backoff | None = None,
        refresh: Callable[[], Awaitable[None]] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_body_bytes: int = MAX_BODY_BYTES,
        attempt_seconds: float = 120.0,
        budget_seconds: float | None = None,
        max_attempts: int | None = None,
    ) -> None:
        self.client = client
        self.metrics = metrics
        self.backoff = backoff or Backoff(initial=1.0, maximum=120.0)
        self.refresh = refresh
        self.sleep = sleep
        self.not_before = 0.0  # monotonic time before which no request goes out
        self.waits: list[float] = []  # rate-limit waits taken, seconds (for tests and logs)
        self.max_body_bytes = max_body_bytes
        self.attempt_seconds = attempt_seconds
        self.budget_seconds = budget_seconds
        self.max_attempts = max_attempts

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One attempt, the body read under the byte cap, all within ``attempt_seconds``."""
        auth = kwargs.pop("auth", httpx.USE_CLIENT_DEFAULT)  # send()'s, not the request's
        async with asyncio.timeout(self.attempt_seconds):
            request = self.client.build_request(method, url, **kwargs)
            resp = await self.client.send(request, stream=True, auth=auth)
            try:
                return await read_capped(resp, self.max_body_bytes)
            finally:
                await resp.aclose()

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        refreshed = False
        started = time.monotonic()
        attempts = 0
        while True:
            delay = self.not_before - time.monotonic()
            if self.budget_seconds is not None and attempts:
                left = self.budget_seconds - (time.monotonic() - started)
                if delay > left:  # the server asks for a wait past this turn's budget
                    raise RetriesExhausted(f"{method} {_path(url)}: next try in {delay:.0f}s")
            if delay > 0:
                await self.sleep(delay)
            attempts += 1
            try:
                resp = await self._send(method, url, **kwargs)
            except (httpx.TransportError, httpx.DecodingError, TimeoutError) as exc:
                # Refused, reset, dropped mid-body, timed out: all worth another try.
                what = f"{method} {_path(url)}: {type(exc).__name__}: {exc}"
                self._check_budget(started, attempts, what)
                await self._retry(what)
                continue
            except httpx.TooManyRedirects as exc:
                raise HTTPStatusError(0, f"{method} {_path(url)}: {exc}") from None
            status = resp.status_code
            if status in (429, 420):
                wait = ratelimit_wait(resp.headers)
                wait = self.backoff.next_delay() if wait is None else min(wait, MAX_WAIT_SECONDS)
                log.warning(
                    "%s: rate limited (HTTP %d); waiting %.1fs", self.metrics.source, status, wait
                )
                self._pause(wait)
                continue
            pace = pacing_delay(resp.headers)
            if pace > 0:
                log.info(
                    "%s: rate-limit quota low; next request in %.1fs", self.metrics.source, pace
                )
                self._pause(pace)
            if status == 401 and self.refresh is not None and not refreshed:
                refreshed = True  # one new token per request; a second 401 is an error
                await self.refresh()
                continue
            if status in _RETRY_STATUS:
                what = f"{method} {_path(url)}: HTTP {status}"
                self._check_budget(started, attempts, what)
                await self._retry(what)
                continue
            if status >= 400:
                raise HTTPStatusError(status, f"{method} {_path(url)}")
            self.backoff.reset()
            return resp

    def _check_budget(self, started: float, attempts: int, what: str) -> None:
        if self.max_attempts is not None and attempts >= self.max_attempts:
            raise RetriesExhausted(f"{what} ({attempts} attempts)")
        if self.budget_seconds is not None:
            next_at = time.monotonic() + self.backoff.peek()
            if next_at - started > self.budget_seconds:
                raise RetriesExhausted(f"{what} (after {time.monotonic() - started:.0f}s)")

    def _pause(self, seconds: float) -> None:
        self.metrics.rate_limited()
        self.waits.append(seconds)
        self.not_before = time.monotonic() + seconds

    async def _retry(self, what: str) -> None:
        delay = self.backoff.next_delay()
        self.metrics.reconnect()
        log.warning("%s: %s; retrying in %.1fs", self.metrics.source, what, delay)
        await self.sleep(delay)


def _path(url: str) -> str:
    return url.split("?", 1)[0]  # logs stay short: no query strings
