"""One HTTP request loop for the polling sources (Reddit, Hacker News, RSS).

``Poller.request`` returns the first usable answer (2xx or 304) and absorbs everything
transient on the way: dropped connections and timeouts and 5xx answers (exponential
backoff with jitter, counted as reconnects), 429s (``Retry-After`` when given, else the
backoff; counted as rate-limit waits). After every answer it reads the rate-limit headers
(``X-Ratelimit-Remaining``/``-Reset``/``-Used``) and paces the next request so the quota
is spread over its window instead of exhausted. Other 4xx answers raise ``HTTPStatusError``
for the source to decide; a 401 first gives the source's ``refresh`` hook a chance.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from ingest.backoff import Backoff, ratelimit_wait
from ingest.http import HTTPStatusError
from ingest.sources.base import SourceMetrics

log = logging.getLogger(__name__)

_RETRY_STATUS = frozenset({408, 500, 502, 503, 504, 520, 521, 522, 523, 524})
# Below this many requests left in the window, requests are spread evenly over what remains.
_PACE_BELOW = 10.0


def pacing_delay(headers: Mapping[str, str], now: float | None = None) -> float:
    """Seconds to wait before the next request, from an answer's rate-limit headers."""
    wait = ratelimit_wait(headers, now)
    if wait is not None:
        return wait
    remaining, reset = headers.get("X-Ratelimit-Remaining"), headers.get("X-Ratelimit-Reset")
    if remaining is None or reset is None:
        return 0.0
    try:
        left, window = float(remaining), float(reset)
    except ValueError:
        return 0.0
    if left >= _PACE_BELOW or window <= 0:
        return 0.0
    return window / max(left, 1.0)


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
    ) -> None:
        self.client = client
        self.metrics = metrics
        self.backoff = backoff or Backoff(initial=1.0, maximum=120.0)
        self.refresh = refresh
        self.sleep = sleep
        self.not_before = 0.0  # monotonic time before which no request goes out
        self.waits: list[float] = []  # rate-limit waits taken, seconds (for tests and logs)

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        refreshed = False
        while True:
            delay = self.not_before - time.monotonic()
            if delay > 0:
                await self.sleep(delay)
            try:
                resp = await self.client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                # Refused, reset, dropped mid-body, timed out: all worth another try.
                await self._retry(f"{method} {_path(url)}: {type(exc).__name__}: {exc}")
                continue
            status = resp.status_code
            if status in (429, 420):
                wait = ratelimit_wait(resp.headers)
                wait = self.backoff.next_delay() if wait is None else wait
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
                await self._retry(f"{method} {_path(url)}: HTTP {status}")
                continue
            if status >= 400:
                raise HTTPStatusError(status, f"{method} {_path(url)}")
            self.backoff.reset()
            return resp

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
