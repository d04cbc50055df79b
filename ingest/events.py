"""Canonical events v1 (../shared/spec/EVENTS.md): the contract between ingest and processors.

One msgspec Struct per kind, tagged by ``kind``; ``decode_event`` validates strictly and
raises ``InvalidEvent`` naming the field and the reason. Nullable fields may be absent
(they default to null); fields the metrics cannot do without are required.
"""

from __future__ import annotations

import ipaddress
import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

SCHEMA_VERSION = 1

Platform = Literal["bluesky", "mastodon", "reddit", "hackernews", "x", "youtube", "rss", "web"]
PLATFORMS: tuple[str, ...] = Platform.__args__  # type: ignore[attr-defined]
SOCIAL_PLATFORMS = tuple(p for p in PLATFORMS if p != "web")

ShareNetwork = Literal[
    "facebook", "x", "linkedin", "bluesky", "mastodon", "reddit", "whatsapp",
    "telegram", "pinterest", "email", "copy_link", "other",
]  # fmt: skip
SHARE_NETWORKS: tuple[str, ...] = ShareNetwork.__args__  # type: ignore[attr-defined]

KINDS = ("post", "reshare", "reaction", "pageview", "share_click", "conversion")
SOCIAL_KINDS = frozenset({"post", "reshare", "reaction"})
WEB_KINDS = frozenset({"pageview", "share_click", "conversion"})

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]

# RFC 3339 date-time; the offset is required (``Z`` or ±hh:mm), fractions optional. Platform
# timestamps are read with it; canonical events must use the strict form below.
_TS_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z"
)
# EVENTS.md "Bounds": canonical times are exactly YYYY-MM-DDTHH:MM:SS[.fraction]Z in ASCII
# digits ([0-9], not \d: other scripts' digits are not allowed), UTC, no offset.
_CANONICAL_TS_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?Z\Z"
)

# EVENTS.md "Bounds" limits.
MIN_TS = 946684800.0  # 2000-01-01T00:00:00Z
MAX_COUNT = 10**12  # followers and conversion values
MAX_SESSION_CHARS = 128
DEFAULT_MAX_FUTURE_SECONDS = 300.0
_IPV4_LIKE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}\Z")
_HTTP_URL = re.compile(r"https?://[^/?#\s]", re.IGNORECASE)
_EMAIL_LIKE = re.compile(r"[^@]+@[^@.]+(?:\.[^@.]+)+\Z")


class InvalidEvent(ValueError):
    """A record that breaks the contract; ``reason`` is a short, bounded label value."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Author(msgspec.Struct, forbid_unknown_fields=False):
    id: NonEmpty
    handle: str | None = None
    # Typed loosely on purpose: 12.0 or 1e3 decode (as floats) so that the bounds check can
    # name them out_of_range, as EVENTS.md asks, instead of a generic wrong_type.
    followers: int | float | None = None


class Utm(msgspec.Struct):
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    content: str | None = None
    term: str | None = None


class _Envelope(msgspec.Struct, tag_field="kind", kw_only=True):
    v: int
    id: str  # an empty id has no `<platform>:` prefix: wrong_platform (the bounds check)
    platform: Platform
    ts: str
    ingested_at: str | None = None  # required by the bounds check (future_ts needs it)

    @property
    def kind(self) -> str:
        # msgspec keeps the tag out of the attributes; producers and processors read it here.
        return str(self.__struct_config__.tag)


class Post(_Envelope, tag="post", kw_only=True):
    author: Author
    text: str = ""
    url: str | None = None
    lang: str | None = None
    hashtags: list[str] = []
    links: list[str] = []
    reply_to: str | None = None
    reply_to_author_id: str | None = None
    quote_of: str | None = None
    quote_of_author_id: str | None = None


class Reshare(_Envelope, tag="reshare", kw_only=True):
    author: Author
    target: NonEmpty
    target_url: str | None = None
    target_author_id: str | None = None


class Reaction(_Envelope, tag="reaction", kw_only=True):
    author: Author
    target: NonEmpty
    target_author_id: str | None = None
    reaction: str = "like"


class Pageview(_Envelope, tag="pageview", kw_only=True):
    site: NonEmpty
    url: str
    referrer: str | None = None
    utm: Utm | None = None
    session: str  # checked by the bounds (invalid_session), not by its type


class ShareClick(_Envelope, tag="share_click", kw_only=True):
    site: NonEmpty
    url: str
    network: ShareNetwork
    session: str  # checked by the bounds (invalid_session), not by its type


class Conversion(_Envelope, tag="conversion", kw_only=True):
    site: NonEmpty
    url: str
    goal: str
    value: float = 0
    session: str  # checked by the bounds (invalid_session), not by its type


Event = Post | Reshare | Reaction | Pageview | ShareClick | Conversion
SocialEvent = Post | Reshare | Reaction
WebEvent = Pageview | ShareClick | Conversion

_decoder = msgspec.json.Decoder(Event)
_encoder = msgspec.json.Encoder()


_minute_cache: dict[str, float] = {}


def parse_ts(value: str) -> float:
    """RFC 3339 → unix seconds (float). Raises ValueError when it does not parse.

    The hot path (UTC ``...Z``, the canonical form) caches each minute's epoch, so a
    timestamp costs a dict lookup and a float parse instead of a datetime construction."""
    if (
        len(value) >= 20
        and value[-1] == "Z"
        and value[10] == "T"
        and value[16] == ":"
        and value[19] in ".Z"
    ):
        base = _minute_cache.get(value[:16])
        if base is not None:
            sec = value[17:-1]
            if (
                sec.replace(".", "", 1).isdigit()
                and len(sec) >= 2
                and (len(sec) == 2 or sec[2] == ".")
            ):
                s = float(sec)
                if s < 60:
                    return base + s
    m = _TS_RE.match(value)
    if m is None:
        raise ValueError(f"not an RFC 3339 date-time: {value[:40]!r}")
    y, mo, d, h, mi, s_, frac, off = m.groups()
    dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s_), tzinfo=UTC)
    t = dt.timestamp() + (float(frac) if frac else 0.0)
    if off not in ("Z", "z"):
        sign = 1 if off[0] == "+" else -1
        t -= sign * (int(off[1:3]) * 3600 + int(off[4:6]) * 60)
    elif value[10] == "T" and len(_minute_cache) < 1_000_000:
        _minute_cache[value[:16]] = dt.timestamp() - int(s_)
    return t


def parse_canonical_ts(value: str) -> float:
    """A canonical event time (EVENTS.md "Bounds") → unix seconds; ValueError otherwise.

    Same minute cache as ``parse_ts``; a cached prefix was validated when it was cached, so
    only the seconds are checked here."""
    if len(value) >= 20 and value[-1] == "Z":
        base = _minute_cache.get(value[:16])
        if base is not None and value[16] == ":" and value[10] == "T":
            sec = value[17:-1]
            if (
                sec.isascii()
                and sec[:2].isdigit()
                and (len(sec) == 2 or (sec[2] == "." and len(sec) > 3 and sec[3:].isdigit()))
            ):
                s = float(sec)
                if s < 60:
                    return base + s
    m = _CANONICAL_TS_RE.match(value)
    if m is None:
        raise ValueError(f"not YYYY-MM-DDTHH:MM:SS[.fraction]Z: {value[:40]!r}")
    return parse_ts(value)


def _exact_ts(value: str) -> Decimal:
    """Exact unix seconds of a canonical time (for comparisons at a bound's very edge)."""
    whole = int(parse_ts(value[:19] + "Z"))
    frac = value[20:-1] if value[19] == "." else ""
    return Decimal(whole) + (Decimal("0." + frac) if frac else Decimal(0))


def format_ts(t: float) -> str:
    """unix seconds → ``2026-11-20T10:15:03.123Z`` (milliseconds, UTC)."""
    ms = int(round(t * 1000))
    dt = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def _reason_of(msg: str) -> str:
    """Map msgspec's message onto a small, bounded set of reason labels."""
    if msg.startswith("Object missing required field"):
        return "missing_field"
    if "Invalid value" in msg and "$.kind" in msg:
        return "unknown_kind"
    if "$.platform" in msg and "Invalid enum value" in msg:
        return "unknown_platform"
    if "Object contains unknown field" in msg:
        return "unknown_field"
    if msg.startswith("Expected") and msg.endswith(("`$.ts`", "`$.ingested_at`")):
        return "invalid_ts"  # a number or null is not YYYY-MM-DDTHH:MM:SS[.fraction]Z either
    if msg.endswith(("`$.value`", "`$.author.followers`")):
        return "out_of_range"  # EVENTS.md: not a number in 0..10^12 ("12", null, 1e999)
    if (
        msg.startswith(("Expected", "Invalid enum value", "Number out of range"))
        or "Invalid value" in msg
    ):
        return "wrong_type"
    return "invalid_json"


def decode_event(
    data: bytes | str,
    max_bytes: int | None = None,
    max_future: float = DEFAULT_MAX_FUTURE_SECONDS,
) -> Event:
    """Decode and validate one canonical event; raise InvalidEvent with field and reason."""
    return decode_with_ts(data, max_bytes, max_future)[0]


def decode_trusted(data: bytes | str) -> Event:
    """Decode an event already validated upstream (types only; ``ts`` is not re-parsed)."""
    return _decoder.decode(data)


def decode_with_ts(
    data: bytes | str,
    max_bytes: int | None = None,
    max_future: float = DEFAULT_MAX_FUTURE_SECONDS,
) -> tuple[Event, float]:
    """``decode_event`` that also returns the parsed event time (unix seconds).

    Types first (msgspec), then EVENTS.md's "Bounds" in the order of its table."""
    if max_bytes is not None and len(data) > max_bytes:
        raise InvalidEvent("too_large", f"record is {len(data)} bytes, limit {max_bytes}")
    try:
        ev = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        raise InvalidEvent(_reason_of(msg), msg) from None
    except msgspec.DecodeError as exc:
        raise InvalidEvent("invalid_json", str(exc)) from None
    except UnicodeError as exc:
        # msgspec raises UnicodeDecodeError (not DecodeError) for invalid UTF-8 in strings.
        raise InvalidEvent("invalid_json", f"not valid UTF-8: {exc}") from None
    except RecursionError:
        # msgspec recurses per nesting level, even inside ignored unknown fields.
        raise InvalidEvent("invalid_json", "JSON nested too deeply") from None
    if ev.v != SCHEMA_VERSION:
        raise InvalidEvent("unknown_version", f"`$.v` is {ev.v}, expected {SCHEMA_VERSION}")
    return ev, check_bounds(ev, max_future)


def check_bounds(ev: Event, max_future: float = DEFAULT_MAX_FUTURE_SECONDS) -> float:
    """EVENTS.md "Bounds" for a decoded event; returns its event time (unix seconds)."""
    try:
        ts = parse_canonical_ts(ev.ts)
    except ValueError as exc:
        raise InvalidEvent("invalid_ts", f"`$.ts`: {exc}") from None
    if ev.ingested_at is None:
        raise InvalidEvent("invalid_ts", "`$.ingested_at` is missing")
    try:
        ingested = parse_canonical_ts(ev.ingested_at)
    except ValueError as exc:
        raise InvalidEvent("invalid_ts", f"`$.ingested_at`: {exc}") from None
    limit = ingested + max_future
    # Floats are exact to well under a millisecond here; only the very edge needs decimals.
    if ts > limit + 0.001 or (
        ts > limit - 0.001 and _exact_ts(ev.ts) > _exact_ts(ev.ingested_at) + Decimal(max_future)
    ):
        raise InvalidEvent(
            "future_ts", f"`$.ts` {ev.ts} is more than {max_future:g}s after ingested_at"
        )
    if ts < MIN_TS:
        raise InvalidEvent("out_of_range", f"`$.ts` {ev.ts} is before 2000")
    kind = ev.kind
    if kind in SOCIAL_KINDS:
        f = ev.author.followers  # type: ignore[union-attr]
        if f is not None and not (type(f) is int and 0 <= f <= MAX_COUNT):
            raise InvalidEvent("out_of_range", "`$.author.followers` is not an integer 0..10^12")
    elif kind == "conversion":
        v = ev.value  # type: ignore[union-attr]
        if not (math.isfinite(v) and 0 <= v <= MAX_COUNT):
            raise InvalidEvent("out_of_range", "`$.value` is not a finite number 0..10^12")
    if not ev.id.startswith(ev.platform + ":"):
        raise InvalidEvent("wrong_platform", f"`$.id` does not start with {ev.platform}:")
    if kind in WEB_KINDS:
        if not _http_url(str(getattr(ev, "url", ""))):
            raise InvalidEvent("invalid_url", "`$.url` is not an http(s) URL")
        problem = session_problem(ev.session)  # type: ignore[union-attr]
        if problem:
            raise InvalidEvent("invalid_session", f"`$.session` {problem}")
    return ts


def _http_url(url: str) -> bool:
    """``http://`` or ``https://`` (any case) followed by a host: ``https:/x`` is no URL."""
    return _HTTP_URL.match(url) is not None


def session_problem(session: str) -> str | None:
    """Why a session id breaks EVENTS.md's rule (it must be opaque, never an address)."""
    if not session:
        return "is empty"
    if len(session) > MAX_SESSION_CHARS:
        return f"is longer than {MAX_SESSION_CHARS} characters"
    if not (session.isascii() and session.isprintable()) or " " in session:
        return "holds characters other than printable ASCII without spaces"
    if _IPV4_LIKE.match(session):
        return "looks like an IPv4 address"
    if ":" in session:
        try:
            ipaddress.IPv6Address(session)
        except ValueError:
            pass
        else:
            return "looks like an IPv6 address"
    if _EMAIL_LIKE.match(session):
        return "looks like an e-mail address"
    return None


def encode_event(ev: Event) -> bytes:
    return _encoder.encode(ev)


def event_ts(ev: Event) -> float:
    """The event time of a validated event, unix seconds."""
    return parse_canonical_ts(ev.ts)
