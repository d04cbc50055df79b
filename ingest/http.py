"""HTTP clients for the sources: one factory, one way to read rate limits off a response."""

from __future__ import annotations

import httpx

from ingest.backoff import RateLimited, ratelimit_wait

USER_AGENT = "ripple-ingest/0.1 (+https://github.com/ripple; engagement monitoring)"


def make_client(
    base_url: str,
    *,
    bearer: str | None = None,
    headers: dict[str, str] | None = None,
    connect_timeout: float = 10.0,
    read_timeout: float | None = 30.0,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` rooted at ``base_url``; ``read_timeout=None`` for streams.

    The bearer token goes into a header only; httpx never logs headers.
    """
    hdrs = {"User-Agent": USER_AGENT}
    if bearer:
        hdrs["Authorization"] = f"Bearer {bearer}"
    hdrs.update(headers or {})
    timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=30.0, pool=30.0)
    return httpx.AsyncClient(base_url=base_url, headers=hdrs, timeout=timeout)


def raise_for_rate_limit(response: httpx.Response) -> None:
    """Raise ``RateLimited`` on 429 (or 420, X's old "enhance your calm")."""
    if response.status_code in (429, 420):
        raise RateLimited(ratelimit_wait(response.headers), f"HTTP {response.status_code}")


class HTTPStatusError(Exception):
    """A non-2xx answer other than a rate limit; ``status`` tells which."""

    def __init__(self, status: int, detail: str = "") -> None:
        super().__init__(f"HTTP {status} {detail}".strip())
        self.status = status


def check_response(response: httpx.Response) -> None:
    raise_for_rate_limit(response)
    if response.status_code >= 400:
        raise HTTPStatusError(response.status_code, response.reason_phrase)
