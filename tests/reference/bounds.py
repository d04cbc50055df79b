"""EVENTS.md's validity rules (revision 2), with the reason of each dead letter.

Written from the spec alone. ``check`` first looks at size, then at the JSON and the
fields and types each kind needs, then at the "Bounds" table in its order; the first rule
a record breaks names its reason. Only the bounds reasons (``BOUNDS_REASONS``) are named
by the spec; the structural ones are this oracle's own words.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.config import Config

MINUTE = 60_000
PLATFORMS = {"bluesky", "mastodon", "reddit", "hackernews", "x", "youtube", "rss", "web"}
SOCIAL_KINDS = {"post", "reshare", "reaction"}
WEB_KINDS = {"pageview", "share_click", "conversion"}
KINDS = SOCIAL_KINDS | WEB_KINDS
SHARE_NETWORKS = {
    "facebook", "x", "linkedin", "bluesky", "mastodon", "reddit", "whatsapp",
    "telegram", "pinterest", "email", "copy_link", "other",
}  # fmt: skip
BOUNDS_REASONS = {
    "invalid_ts", "future_ts", "out_of_range", "wrong_platform", "invalid_url",
    "invalid_session", "too_large",
}  # fmt: skip
MAX_COUNT = 10**12  # followers and conversion values: 0 .. 10^12
YEAR_2000 = 946_684_800_000  # 2000-01-01T00:00:00Z in unix milliseconds

# ASCII digits only ([0-9], never \d), upper-case T and Z, no offset.
_TS = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?Z"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_IPV4_LIKE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_EMAIL_LIKE = re.compile(r"[^@]+@[^@.]+(?:\.[^@.]+)+")
_HTTP_URL = re.compile(r"https?://[^/?#]", re.IGNORECASE)


def parse_ts(value: Any) -> int | None:
    """``YYYY-MM-DDTHH:MM:SS[.fraction]Z`` -> unix milliseconds (fraction truncated), or None
    when it is not that string or not a calendar date and time."""
    if not isinstance(value, str):
        return None
    m = _TS.fullmatch(value)
    if m is None:
        return None
    y, mo, d, h, mi, s, frac = m.groups()
    try:
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=UTC)
    except ValueError:  # month 13, February 30, hour 24, second 60, year 0
        return None
    return (dt - _EPOCH) // timedelta(seconds=1) * 1000 + (int((frac + "00")[:3]) if frac else 0)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _need(d: dict[str, Any], key: str, ok: Any) -> str | None:
    """A required field: missing (or null) / wrong type / fine."""
    if d.get(key) is None:
        return "missing_field"
    return None if ok(d[key]) else "wrong_type"


def _optional(d: dict[str, Any], key: str, ok: Any) -> str | None:
    """A nullable field that may be absent."""
    return None if d.get(key) is None or ok(d[key]) else "wrong_type"


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and all(_str(x) for x in v)


def _structure(d: dict[str, Any]) -> str | None:
    """Fields and types of EVENTS.md's tables (not yet their bounds)."""
    if (why := _need(d, "v", _int)) or d["v"] != 1:
        return why or "unsupported_version"
    for key, known, unknown in (("kind", KINDS, "unknown_kind"), ("platform", PLATFORMS, "unknown_platform")):  # fmt: skip
        if why := _need(d, key, _str):
            return why
        if d[key] not in known:
            return unknown
    if d.get("id") is None:
        return "missing_field"
    if not _str(d["id"]):
        return "wrong_type"
    kind = d["kind"]
    if kind in SOCIAL_KINDS:
        author = d.get("author")
        if author is None:
            return "missing_field"
        if not isinstance(author, dict):
            return "wrong_type"
        if why := _need(author, "id", lambda v: _str(v) and v != "") or _optional(author, "handle", _str):  # fmt: skip
            return why
    if kind == "post":
        for key, ok in (("text", _str), ("hashtags", _str_list), ("links", _str_list)):
            if key in d and not ok(d[key]):  # may be absent, never null
                return "wrong_type"
        for key in ("url", "lang", "reply_to", "reply_to_author_id", "quote_of", "quote_of_author_id"):  # fmt: skip
            if why := _optional(d, key, _str):
                return why
        return None
    if kind in ("reshare", "reaction"):
        return (
            _need(d, "target", lambda v: _str(v) and v != "")
            or _optional(d, "target_author_id", _str)
            or _optional(d, "target_url", _str)
            or _optional(d, "reaction", _str)
        )
    for key in ("site", "url", "session"):  # web kinds; url and session bounds come later
        if why := _need(d, key, _str):
            return why
    if d["site"] == "":
        return "wrong_type"
    if kind == "pageview":
        utm = d.get("utm")
        if utm is not None and not (isinstance(utm, dict) and all(_optional(utm, k, _str) is None for k in utm)):  # fmt: skip
            return "wrong_type"
        return _optional(d, "referrer", _str)
    if kind == "share_click":
        return _need(d, "network", _str) or (
            None if d["network"] in SHARE_NETWORKS else "wrong_type"
        )
    return _need(d, "goal", _str)  # conversion; its value is a bound


def session_ok(s: str) -> bool:
    if s == "" or len(s) > 128 or any(not 0x21 <= ord(c) <= 0x7E for c in s):
        return False
    if _IPV4_LIKE.fullmatch(s) or _EMAIL_LIKE.fullmatch(s):
        return False
    if ":" in s:
        try:
            ipaddress.IPv6Address(s)
        except ValueError:
            return True
        return False
    return True


def _bounds(d: dict[str, Any], config: Config) -> str | None:
    """The "Bounds" table, in its order."""
    ts, ingested = parse_ts(d.get("ts")), parse_ts(d.get("ingested_at"))
    if ts is None or ingested is None:  # ingested_at is required (the future bound needs it)
        return "invalid_ts"
    if ts > ingested + config.processing.max_future_seconds * 1000:
        return "future_ts"
    if ts < YEAR_2000:
        return "out_of_range"
    kind = d["kind"]
    if kind in SOCIAL_KINDS:
        f = d["author"].get("followers")
        if f is not None and not (_int(f) and 0 <= f <= MAX_COUNT):  # 12.0 and 1e3 are floats
            return "out_of_range"
    if kind == "conversion" and "value" in d:
        v = d["value"]
        if not (_number(v) and math.isfinite(v) and 0 <= v <= MAX_COUNT):
            return "out_of_range"
    if not d["id"].startswith(d["platform"] + ":"):
        return "wrong_platform"
    if kind in WEB_KINDS:
        if not _HTTP_URL.match(d["url"]):
            return "invalid_url"
        if not session_ok(d["session"]):
            return "invalid_session"
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")  # NaN, Infinity: Python's extensions, not JSON


def check(line: bytes, config: Config) -> tuple[dict[str, Any] | None, str | None]:
    """(the event, None) for a valid line, else (None, the reason)."""
    if len(line) > config.kafka.max_event_bytes:
        return None, "too_large"
    try:
        d = json.loads(line.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None, "invalid_json"
    if not isinstance(d, dict):
        return None, "invalid_json"
    why = _structure(d) or _bounds(d, config)
    return (None, why) if why else (d, None)


def reason(line: bytes, config: Config) -> str | None:
    """The dead-letter reason of a line, or None when it is valid."""
    return check(line, config)[1]


_DEFAULT = Config()


def decode(line: bytes, config: Config | None = None) -> dict[str, Any] | None:
    """The event of one line, or None when the line breaks EVENTS.md."""
    return check(line, config or _DEFAULT)[0]
