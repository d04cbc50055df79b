"""What the snippet sends to ``POST /e``, and how it becomes canonical events.

A request body is one JSON object or a list of at most ``max_batch`` of them (sent as
``application/json`` or as ``text/plain``, which is what ``sendBeacon`` sends), e.g.::

    {"kind": "pageview", "site": "acme.com", "url": "https://acme.com/?utm_source=bsky",
     "referrer": "https://bsky.app/", "utm": {"source": "bsky", ...},
     "session": "5f0c...", "nonce": "9a1b..."}

The collector owns the envelope: it sets ``v``, ``platform: "web"``, ``ingested_at``,
``ts`` and ``id``, whatever the client sent for them.

- ``id`` is ``web:`` + a hash of (site, session, nonce). The snippet makes a fresh random
  nonce per event, so a retried request yields the same ids and deduplicates downstream.
- ``ts`` is the time the collector received the request, not a client-sent time: browser
  clocks are often wrong and a client must not be able to place events in windows that are
  already closed; the snippet sends each event as it happens, so the two differ by the
  network latency only. ``ingested_at`` is the same instant.

UTM values are lower-cased (EVENTS.md) and an empty referrer becomes null, whatever the
client did. Page URLs (``url``) lose their ``#fragment`` and every query parameter but the
``utm_*`` ones (EVENTS.md r2: tokens in query strings are personal data); the snippet does the
same before sending, and the collector does it again for clients that do not. A client that
says it is automated (``"automated": true``, the snippet's ``navigator.webdriver``) is
reported by ``parse_request`` so the collector can drop the request as bot traffic. Validation is ``ingest.events.decode_event``, so the collector accepts exactly
what the processors accept; a request is accepted or refused as a whole.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec

from ingest.events import (
    SCHEMA_VERSION,
    WEB_KINDS,
    Conversion,
    InvalidEvent,
    Pageview,
    ShareClick,
    decode_event,
    format_ts,
)

WebEvent = Pageview | ShareClick | Conversion

MAX_NONCE_CHARS = 64
_DETAIL_CHARS = 300


class Rejection(Exception):
    """A request the collector refuses: HTTP ``status``, a bounded ``reason``, a ``detail``.

    ``dead_letter`` says whether the body belongs in ``<ns>.dlq``: true for malformed
    records from an allowed origin (EVENTS.md: invalid input is never dropped silently),
    false for traffic that is not the sites' data at all (unknown site, foreign origin).
    """

    def __init__(self, status: int, reason: str, detail: str, *, dead_letter: bool = True) -> None:
        super().__init__(f"{reason}: {detail}")
        self.status = status
        self.reason = reason
        self.detail = detail[:_DETAIL_CHARS]
        self.dead_letter = dead_letter


def event_id(site: str, session: str, nonce: str) -> str:
    """Stable canonical id: the same (site, session, nonce) always gives the same id."""
    raw = f"{site}\x00{session}\x00{nonce}".encode("utf-8", "surrogatepass")
    return "web:" + hashlib.blake2b(raw, digest_size=16).hexdigest()


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _at(index: int | None, field: str) -> str:
    return f"`$.{field}`" if index is None else f"`$[{index}].{field}`"


def _required_str(item: dict[str, Any], field: str, index: int | None) -> str:
    value = item.get(field)
    if value is None:
        raise Rejection(400, "missing_field", f"{_at(index, field)} is required")
    if not isinstance(value, str):
        raise Rejection(
            400, "wrong_type", f"{_at(index, field)}: expected a string, got {_short(value)}"
        )
    if not value:
        raise Rejection(400, "wrong_type", f"{_at(index, field)}: must not be empty")
    return value


def page_url(url: str) -> str:
    """``url`` without its fragment and with only its ``utm_*`` query parameters (in order).

    Anything that is not an http(s) URL is returned as it is (validation refuses it)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme.lower() not in ("http", "https"):
        return url
    if not parts.fragment and not parts.query and "#" not in url:
        return url
    # Raw segments, not re-encoded: a kept parameter keeps its exact bytes.
    kept = [p for p in parts.query.split("&") if p.split("=", 1)[0].lower().startswith("utm_")]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), ""))


def _normalise(item: dict[str, Any]) -> None:
    url = item.get("url")
    if isinstance(url, str):
        item["url"] = page_url(url)
    utm = item.get("utm")
    if isinstance(utm, dict):
        for key, value in utm.items():
            if isinstance(value, str):
                utm[key] = value.lower() if value else None
    if item.get("referrer") == "":
        item["referrer"] = None


def to_event(item: object, ts: str, index: int | None = None) -> WebEvent:
    """One client object → a validated canonical web event (or a Rejection)."""
    if not isinstance(item, dict):
        where = "the body" if index is None else f"`$[{index}]`"
        raise Rejection(
            400, "wrong_type", f"{where}: expected a JSON object, got {type(item).__name__}"
        )
    kind = item.get("kind")
    if kind is None:
        raise Rejection(400, "missing_field", f"{_at(index, 'kind')} is required")
    if not isinstance(kind, str):
        raise Rejection(
            400, "wrong_type", f"{_at(index, 'kind')}: expected a string, got {_short(kind)}"
        )
    if kind not in WEB_KINDS:
        raise Rejection(
            400,
            "unknown_kind",
            f"{_at(index, 'kind')}: {_short(kind)} is not one of {', '.join(sorted(WEB_KINDS))}",
        )
    site = _required_str(item, "site", index)
    session = _required_str(item, "session", index)
    nonce = _required_str(item, "nonce", index)
    if len(nonce) > MAX_NONCE_CHARS:
        raise Rejection(
            400, "wrong_type", f"{_at(index, 'nonce')}: longer than {MAX_NONCE_CHARS} characters"
        )
    _normalise(item)
    item.update(
        v=SCHEMA_VERSION, platform="web", ts=ts, ingested_at=ts, id=event_id(site, session, nonce)
    )
    try:
        event = decode_event(msgspec.json.encode(item))
    except InvalidEvent as exc:
        detail = exc.detail if index is None else exc.detail.replace("`$", f"`$[{index}]")
        raise Rejection(400, exc.reason, detail) from None
    except (msgspec.EncodeError, UnicodeError, OverflowError) as exc:  # defensive: never crash
        where = "the body" if index is None else f"`$[{index}]`"
        raise Rejection(400, "wrong_type", f"{where}: {exc}") from None
    return event  # type: ignore[return-value]  # kind checked above: a web event


_second_cache: list[tuple[int, str]] = [(-1, "")]


def receive_ts(now: float) -> str:
    """``format_ts(now)``, with the per-second part cached (thousands of requests share it)."""
    ms = int(round(now * 1000))
    second, frac = divmod(ms, 1000)
    cached_second, prefix = _second_cache[0]
    if cached_second != second:
        prefix = format_ts(second)[:-5]  # "2026-11-20T10:15:03"
        _second_cache[0] = (second, prefix)
    return f"{prefix}.{frac:03d}Z"


def parse_body(body: bytes, now: float, *, max_batch: int) -> list[WebEvent]:
    """A request body → canonical events stamped with the receive time ``now``."""
    return parse_request(body, now, max_batch=max_batch)[0]


def _automated(item: object) -> bool:
    return isinstance(item, dict) and item.pop("automated", None) is True


def parse_request(body: bytes, now: float, *, max_batch: int) -> tuple[list[WebEvent], bool]:
    """``parse_body``, and whether any object of it says its browser is automated."""
    if not body.strip():
        raise Rejection(400, "invalid_json", "empty body: expected a JSON object or a list of them")
    try:
        obj = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise Rejection(400, "invalid_json", str(exc)) from None
    except UnicodeError as exc:
        raise Rejection(400, "invalid_json", f"not valid UTF-8: {exc}") from None
    except RecursionError:
        raise Rejection(400, "invalid_json", "JSON nested too deeply") from None
    ts = receive_ts(now)
    if not isinstance(obj, list):
        automated = _automated(obj)
        return [to_event(obj, ts)], automated
    if not obj:
        raise Rejection(400, "invalid_json", "empty batch: expected at least one event")
    if len(obj) > max_batch:
        raise Rejection(413, "too_large", f"batch of {len(obj)} events, limit {max_batch}")
    automated = any([_automated(item) for item in obj])  # a list: every flag is popped
    return [to_event(item, ts, i) for i, item in enumerate(obj)], automated
