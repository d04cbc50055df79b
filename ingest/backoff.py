"""Reconnect delays and rate-limit headers, shared by every source.

``Backoff`` is exponential with full jitter by default (AWS architecture blog's "full
jitter": sleep a uniform time in [0, min(cap, base * factor**attempt)]) so reconnecting
clients do not stampede; ``linear=True`` and ``jitter=False`` reproduce schedules a
platform documents (X's filtered stream).
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime


@dataclass
class Backoff:
    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    jitter: bool = True
    linear: bool = False
    attempt: int = field(default=0, init=False)

    def peek(self) -> float:
        """The cap of the next delay (no jitter applied)."""
        if self.linear:
            return min(self.maximum, self.initial * (self.attempt + 1))
        return min(self.maximum, self.initial * self.factor**self.attempt)

    def next_delay(self) -> float:
        cap = self.peek()
        self.attempt += 1
        return random.uniform(0, cap) if self.jitter else cap

    def reset(self) -> None:
        self.attempt = 0


class RateLimited(Exception):
    """The platform said "slow down"; ``retry_after`` seconds when it said how long."""

    def __init__(self, retry_after: float | None, detail: str = "") -> None:
        super().__init__(f"rate limited (retry after {retry_after}s) {detail}".strip())
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date (RFC 9110)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # Works for case-insensitive mappings (httpx/aiohttp) and plain dicts alike.
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lower), None)
    return value


def ratelimit_wait(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait before the next request, from the response headers, or None.

    ``Retry-After`` wins. Otherwise, when ``X-Ratelimit-Remaining`` (Reddit) or
    ``x-rate-limit-remaining`` (X) says nothing is left, wait until the reset: Reddit's
    ``X-Ratelimit-Reset`` is seconds from now, X's ``x-rate-limit-reset`` a unix time
    (values above 10^9 are taken as unix times).
    """
    retry = parse_retry_after(_header(headers, "Retry-After"), now)
    if retry is not None:
        return retry
    for prefix in ("X-Ratelimit-", "x-rate-limit-"):
        remaining = _header(headers, prefix + "Remaining")
        reset = _header(headers, prefix + "Reset")
        if remaining is None or reset is None:
            continue
        try:
            left = float(remaining)
            reset_value = float(reset)
        except ValueError:
            continue
        if left >= 1:
            return None
        if reset_value > 1e9:
            now = time.time() if now is None else now
            return max(0.0, reset_value - now)
        return max(0.0, reset_value)
    return None
