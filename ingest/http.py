"""HTTP clients for the sources: one factory, one way to read rate limits off a response,
one way to read a body with a byte cap.

Clients follow redirects, at most ``MAX_REDIRECTS`` (a feed that moved keeps working, a
redirect loop ends), and ask for gzip/deflate only, which ``read_capped`` decompresses
itself with an output bound: a small compressed body that inflates to gigabytes (a gzip
bomb) is refused after ``cap`` bytes, never held in memory.
"""

from __future__ import annotations

import zlib

import httpx

from ingest.backoff import RateLimited, ratelimit_wait

USER_AGENT = "ripple-ingest/0.1 (+https://github.com/ripple; engagement monitoring)"
MAX_REDIRECTS = 5


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
    hdrs = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}
    if bearer:
        hdrs["Authorization"] = f"Bearer {bearer}"
    hdrs.update(headers or {})
    timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=30.0, pool=30.0)
    return httpx.AsyncClient(
        base_url=base_url,
        headers=hdrs,
        timeout=timeout,
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
    )


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


class BodyTooLarge(HTTPStatusError):
    """A body (after decompression) over the reader's cap: refused, not retried."""

    def __init__(self, cap: int, detail: str = "") -> None:
        super().__init__(0, f"body over {cap} bytes {detail}".strip())
        self.cap = cap


_DROP_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


async def read_capped(response: httpx.Response, cap: int) -> httpx.Response:
    """The streamed ``response`` read into a plain one with at most ``cap`` decoded bytes.

    Raises ``BodyTooLarge`` past the cap. gzip and deflate are inflated here with an
    output bound; any other encoding goes through httpx's decoder chunk by chunk."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    out = bytearray()

    def add(data: bytes) -> None:
        out.extend(data)
        if len(out) > cap:
            raise BodyTooLarge(cap, f"({encoding or 'identity'})")

    if encoding in ("gzip", "x-gzip", "deflate"):
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header
        async for chunk in response.aiter_raw():
            data = chunk
            while data:
                try:
                    add(inflater.decompress(data, cap + 1 - len(out)))
                except zlib.error as exc:
                    raise httpx.DecodingError(f"bad {encoding} body: {exc}") from None
                data = inflater.unconsumed_tail
        add(inflater.flush())
    elif encoding in ("", "identity"):
        async for chunk in response.aiter_raw():
            add(chunk)
    else:
        async for chunk in response.aiter_bytes():
            add(chunk)
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _DROP_HEADERS]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=bytes(out),
        request=response.request,
        extensions={"http_version": response.extensions.get("http_version", b"HTTP/1.1")},
    )
