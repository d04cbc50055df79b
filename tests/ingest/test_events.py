"""Canonical event models (ingest/events.py): round trips, strict validation, timestamps."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.events import (
    KINDS,
    PLATFORMS,
    SHARE_NETWORKS,
    SOCIAL_PLATFORMS,
    Author,
    Conversion,
    Event,
    InvalidEvent,
    Pageview,
    Post,
    Reaction,
    Reshare,
    ShareClick,
    Utm,
    decode_event,
    encode_event,
    event_ts,
    format_ts,
    parse_ts,
    session_problem,
)

# -- strategies -------------------------------------------------------------------------------

# Any Unicode a JSON string can carry (lone surrogates cannot be encoded as UTF-8).
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
non_empty = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)
maybe_text = st.none() | text
timestamps = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
).map(lambda d: format_ts(d.timestamp()))
counts = st.integers(min_value=0, max_value=10**12)
finite = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)
http_urls = text.map(lambda t: "https://example.com/" + t)
# Opaque session ids as EVENTS.md's bounds allow them (printable ASCII, no address shapes).
sessions = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40
).filter(lambda s: session_problem(s) is None)

authors = st.builds(Author, id=non_empty, handle=maybe_text, followers=st.none() | counts)
utms = st.none() | st.builds(
    Utm,
    source=maybe_text,
    medium=maybe_text,
    campaign=maybe_text,
    content=maybe_text,
    term=maybe_text,
)


def envelope(platforms: st.SearchStrategy[str]) -> dict[str, Any]:
    return {
        "v": st.just(1),
        "id": non_empty,
        "platform": platforms,
        "ts": timestamps,
    }


def _bounded(ev: Event) -> Event:
    """Within EVENTS.md's bounds: ingested when it happened, id prefixed by its platform."""
    return msgspec.structs.replace(ev, ingested_at=ev.ts, id=f"{ev.platform}:{ev.id}")


social = st.sampled_from(SOCIAL_PLATFORMS)
web = st.just("web")
events: st.SearchStrategy[Event] = st.one_of(
    st.builds(
        Post,
        **envelope(social),
        author=authors,
        text=text,
        url=maybe_text,
        lang=maybe_text,
        hashtags=st.lists(text, max_size=4),
        links=st.lists(text, max_size=4),
        reply_to=maybe_text,
        reply_to_author_id=maybe_text,
        quote_of=maybe_text,
        quote_of_author_id=maybe_text,
    ),
    st.builds(
        Reshare,
        **envelope(social),
        author=authors,
        target=non_empty,
        target_url=maybe_text,
        target_author_id=maybe_text,
    ),
    st.builds(
        Reaction,
        **envelope(social),
        author=authors,
        target=non_empty,
        target_author_id=maybe_text,
        reaction=text,
    ),
    st.builds(
        Pageview,
        **envelope(web),
        site=non_empty,
        url=http_urls,
        referrer=maybe_text,
        utm=utms,
        session=sessions,
    ),
    st.builds(
        ShareClick,
        **envelope(web),
        site=non_empty,
        url=http_urls,
        network=st.sampled_from(SHARE_NETWORKS),
        session=sessions,
    ),
    st.builds(
        Conversion,
        **envelope(web),
        site=non_empty,
        url=http_urls,
        goal=text,
        value=finite,
        session=sessions,
    ),
).map(_bounded)

# -- round trips ------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events)
def test_encode_decode_round_trip(ev: Event) -> None:
    raw = encode_event(ev)
    back = decode_event(raw)
    assert back == ev
    assert type(back) is type(ev)
    assert encode_event(back) == raw  # encoding is deterministic


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events)
def test_encoded_form_is_the_spec_json(ev: Event) -> None:
    obj = json.loads(encode_event(ev))
    assert obj["kind"] in KINDS
    assert obj["platform"] in PLATFORMS
    assert obj["v"] == 1
    assert obj["ts"].endswith("Z")
    # The stdlib JSON view decodes to the same event (no msgspec-only encoding).
    assert decode_event(json.dumps(obj).encode()) == ev


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_another_error(raw: bytes) -> None:
    try:
        decode_event(raw)
    except InvalidEvent as exc:
        assert exc.reason and exc.detail


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["v", "id", "kind", "platform", "ts", "site", "url", "session"]),
        json_values,
    )
)
def test_arbitrary_objects_are_valid_or_invalid_event(obj: dict[str, Any]) -> None:
    try:
        ev = decode_event(msgspec.json.encode(obj))
    except InvalidEvent as exc:
        assert exc.reason
    else:
        assert decode_event(encode_event(ev)) == ev


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
)
def test_ts_format_parse_round_trip_to_the_millisecond(dt: datetime) -> None:
    t = dt.timestamp()
    assert abs(parse_ts(format_ts(t)) - t) <= 0.0005 + 1e-6
    assert format_ts(parse_ts(format_ts(t))) == format_ts(t)


# -- validation, table-driven ------------------------------------------------------------------

PAGEVIEW: dict[str, Any] = {
    "v": 1,
    "id": "web:abc",
    "kind": "pageview",
    "platform": "web",
    "ts": "2026-11-20T10:15:03.123Z",
    "ingested_at": "2026-11-20T10:15:03.400Z",
    "site": "acme.com",
    "url": "https://acme.com/p/1",
    "referrer": "https://bsky.app/",
    "utm": {"source": "bsky", "medium": "social", "campaign": None, "content": None, "term": None},
    "session": "s1",
}
POST: dict[str, Any] = {
    "v": 1,
    "id": "bluesky:at://did:plc:abc/app.bsky.feed.post/3kq2",
    "kind": "post",
    "platform": "bluesky",
    "ts": "2026-11-20T10:15:03.123Z",
    "ingested_at": "2026-11-20T10:15:03.400Z",
    "author": {"id": "did:plc:abc", "handle": "ann.bsky.social", "followers": 1200},
    "text": "Loving the new #AcmeShoes https://acme.com/p/1",
    "url": "https://bsky.app/profile/ann.bsky.social/post/3kq2",
    "lang": "en",
    "hashtags": ["acmeshoes"],
    "links": ["https://acme.com/p/1"],
    "reply_to": None,
    "quote_of": None,
}
_DROP = object()


def _with(base: dict[str, Any], **changes: Any) -> bytes:
    obj = dict(base)
    for key, value in changes.items():
        if value is _DROP:
            obj.pop(key, None)
        else:
            obj[key] = value
    return json.dumps(obj).encode()


INVALID = [
    # (case, raw, reason, text the detail must contain)
    ("not json", b"{nope", "invalid_json", "malformed"),
    ("truncated", _with(PAGEVIEW)[:-5], "invalid_json", "truncated"),
    ("empty", b"", "invalid_json", ""),
    ("array", b"[1, 2]", "wrong_type", "object"),
    ("string", b'"pageview"', "wrong_type", "object"),
    ("invalid utf-8", b'{"kind":"pageview","url":"\xff\xfe"}', "invalid_json", "UTF-8"),
    (
        "nested too deep",
        b'{"kind":"post","x":' + b"[" * 5000 + b"]" * 5000 + b"}",
        "invalid_json",
        "deep",
    ),
    ("no kind", _with(PAGEVIEW, kind=_DROP), "missing_field", "kind"),
    ("unknown kind", _with(PAGEVIEW, kind="like"), "unknown_kind", "$.kind"),
    ("kind not a string", _with(PAGEVIEW, kind=3), "wrong_type", "kind"),
    ("unknown platform", _with(PAGEVIEW, platform="myspace"), "unknown_platform", "$.platform"),
    ("no id", _with(PAGEVIEW, id=_DROP), "missing_field", "`id`"),
    ("empty id", _with(PAGEVIEW, id=""), "wrong_platform", "web:"),
    ("no session", _with(PAGEVIEW, session=_DROP), "missing_field", "`session`"),
    ("no site", _with(PAGEVIEW, site=_DROP), "missing_field", "`site`"),
    ("url not a string", _with(PAGEVIEW, url=42), "wrong_type", "$.url"),
    ("utm not an object", _with(PAGEVIEW, utm="bsky"), "wrong_type", "$.utm"),
    ("utm value a number", _with(PAGEVIEW, utm={"source": 1}), "wrong_type", "$.utm.source"),
    ("v a string", _with(PAGEVIEW, v="1"), "wrong_type", "$.v"),
    ("v a bool", _with(PAGEVIEW, v=True), "wrong_type", "$.v"),
    ("v 2", _with(PAGEVIEW, v=2), "unknown_version", "$.v"),
    ("no ts", _with(PAGEVIEW, ts=_DROP), "missing_field", "`ts`"),
    ("ts not rfc3339", _with(PAGEVIEW, ts="20 Nov 2026"), "invalid_ts", "$.ts"),
    ("ts without offset", _with(PAGEVIEW, ts="2026-11-20T10:15:03"), "invalid_ts", "$.ts"),
    ("ts month 13", _with(PAGEVIEW, ts="2026-13-20T10:15:03Z"), "invalid_ts", "month"),
    ("ts a number", _with(PAGEVIEW, ts=1763633703), "invalid_ts", "$.ts"),
    ("post without author", _with(POST, author=_DROP), "missing_field", "`author`"),
    ("author without id", _with(POST, author={"handle": "x"}), "missing_field", "`id`"),
    (
        "negative followers",
        _with(POST, author={"id": "a", "followers": -1}),
        "out_of_range",
        "followers",
    ),
    ("hashtags a string", _with(POST, hashtags="acme"), "wrong_type", "$.hashtags"),
    ("hashtag a number", _with(POST, hashtags=[1]), "wrong_type", "$.hashtags[0]"),
    (
        "reshare without target",
        _with(POST, kind="reshare", target=_DROP),
        "missing_field",
        "`target`",
    ),
    (
        "unknown share network",
        _with(PAGEVIEW, kind="share_click", network="myspace"),
        "wrong_type",
        "$.network",
    ),
    (
        "conversion value a string",
        _with(PAGEVIEW, kind="conversion", goal="g", value="9"),
        "out_of_range",
        "$.value",
    ),
    (
        "conversion value out of range",
        _with(PAGEVIEW, kind="conversion", goal="g").replace(b"}", b', "value": 1e400}'),
        "out_of_range",
        "$.value",
    ),
]

# EVENTS.md revision 2, "Bounds": one row per rule and edge (ingested_at is 10:15:03.400Z).
BOUNDS = [
    ("ts with an offset", _with(PAGEVIEW, ts="2026-11-20T10:15:03+00:00"), "invalid_ts", "$.ts"),
    ("ts lower-case z", _with(PAGEVIEW, ts="2026-11-20T10:15:03.123z"), "invalid_ts", "$.ts"),
    ("ts with a space", _with(PAGEVIEW, ts="2026-11-20 10:15:03Z"), "invalid_ts", "$.ts"),
    ("ts Arabic-Indic digits", _with(PAGEVIEW, ts="٢٠٢٦-11-20T10:15:03Z"), "invalid_ts", "$.ts"),
    ("ts Feb 30", _with(PAGEVIEW, ts="2026-02-30T10:15:03Z"), "invalid_ts", "day"),
    ("ts empty fraction", _with(PAGEVIEW, ts="2026-11-20T10:15:03.Z"), "invalid_ts", "$.ts"),
    ("ingested_at missing", _with(PAGEVIEW, ingested_at=_DROP), "invalid_ts", "ingested_at"),
    ("ingested_at null", _with(PAGEVIEW, ingested_at=None), "invalid_ts", "ingested_at"),
    (
        "ingested_at with offset",
        _with(PAGEVIEW, ingested_at="2026-11-20T11:15:03+01:00"),
        "invalid_ts",
        "ingested_at",
    ),
    ("post dated 2999", _with(POST, ts="2999-01-01T00:00:00Z"), "future_ts", "ingested_at"),
    (
        "ts 300.001 s after ingested_at",
        _with(PAGEVIEW, ts="2026-11-20T10:20:03.401Z"),
        "future_ts",
        "300",
    ),
    ("ts before 2000", _with(PAGEVIEW, ts="1999-12-31T23:59:59.999Z"), "out_of_range", "2000"),
    (
        "followers a float",
        _with(POST, author={"id": "a", "followers": 12.0}),
        "out_of_range",
        "followers",
    ),
    (
        "followers with an exponent",
        _with(POST, author={"id": "a", "followers": 1e3}),
        "out_of_range",
        "followers",
    ),
    (
        "followers above 10^12",
        _with(POST, author={"id": "a", "followers": 10**12 + 1}),
        "out_of_range",
        "followers",
    ),
    (
        "conversion value negative",
        _with(PAGEVIEW, kind="conversion", goal="g", value=-0.01),
        "out_of_range",
        "$.value",
    ),
    (
        "conversion value above 10^12",
        _with(PAGEVIEW, kind="conversion", goal="g", value=1.5e12),
        "out_of_range",
        "$.value",
    ),
    ("id of another platform", _with(POST, id="x:123"), "wrong_platform", "bluesky:"),
    ("id without prefix", _with(PAGEVIEW, id="abc"), "wrong_platform", "web:"),
    (
        "followers a string",
        _with(POST, author={"id": "a", "followers": "12"}),
        "out_of_range",
        "followers",
    ),
    (
        "conversion value null",
        _with(PAGEVIEW, kind="conversion", goal="g", value=None),
        "out_of_range",
        "$.value",
    ),
    ("javascript url", _with(PAGEVIEW, url="javascript:alert(1)"), "invalid_url", "$.url"),
    ("relative url", _with(PAGEVIEW, url="/p/1"), "invalid_url", "$.url"),
    ("https with one slash", _with(PAGEVIEW, url="https:/acme.com/"), "invalid_url", "$.url"),
    ("https without a host", _with(PAGEVIEW, url="https:///p/1"), "invalid_url", "$.url"),
    (
        "ftp url",
        _with(PAGEVIEW, kind="share_click", network="x", url="ftp://acme.com/"),
        "invalid_url",
        "$.url",
    ),
    ("session empty", _with(PAGEVIEW, session=""), "invalid_session", "empty"),
    ("session 129 chars", _with(PAGEVIEW, session="s" * 129), "invalid_session", "128"),
    ("session with a space", _with(PAGEVIEW, session="a b"), "invalid_session", "ASCII"),
    ("session non-ASCII", _with(PAGEVIEW, session="sé"), "invalid_session", "ASCII"),
    ("session a tab", _with(PAGEVIEW, session="a\tb"), "invalid_session", "ASCII"),
    ("session IPv4", _with(PAGEVIEW, session="192.168.1.20"), "invalid_session", "IPv4"),
    ("session IPv6", _with(PAGEVIEW, session="2001:db8::1"), "invalid_session", "IPv6"),
    ("session e-mail", _with(PAGEVIEW, session="ann@example.com"), "invalid_session", "e-mail"),
]

VALID_EDGES = [
    ("ts exactly 300 s after ingested_at", _with(PAGEVIEW, ts="2026-11-20T10:20:03.400Z")),
    ("ts exactly 2000-01-01", _with(PAGEVIEW, ts="2000-01-01T00:00:00Z")),
    ("ts with nanoseconds", _with(PAGEVIEW, ts="2026-11-20T10:15:03.123456789Z")),
    ("followers 0", _with(POST, author={"id": "a", "followers": 0})),
    ("followers 10^12", _with(POST, author={"id": "a", "followers": 10**12})),
    ("conversion value 10^12", _with(PAGEVIEW, kind="conversion", goal="g", value=1e12)),
    ("session 128 chars", _with(PAGEVIEW, session="s" * 128)),
    ("session of dots and digits", _with(PAGEVIEW, session="1.2.3.4.5")),
    ("session with a colon", _with(PAGEVIEW, session="abc:def")),
    ("session with an @", _with(PAGEVIEW, session="ann@localhost")),
    ("HTTP url", _with(PAGEVIEW, url="HTTP://ACME.COM/")),
]


@pytest.mark.parametrize(("case", "raw", "reason", "needle"), BOUNDS, ids=[c[0] for c in BOUNDS])
def test_bounds_rules_name_their_reason(case: str, raw: bytes, reason: str, needle: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        decode_event(raw)
    assert info.value.reason == reason, info.value
    assert needle in info.value.detail


@pytest.mark.parametrize(("case", "raw"), VALID_EDGES, ids=[c[0] for c in VALID_EDGES])
def test_bounds_edges_that_stay_valid(case: str, raw: bytes) -> None:
    decode_event(raw)


def test_max_future_is_configurable() -> None:
    raw = _with(PAGEVIEW, ts="2026-11-20T10:16:03.400Z")  # 60 s after ingested_at
    decode_event(raw, max_future=60)
    with pytest.raises(InvalidEvent) as info:
        decode_event(raw, max_future=59.999)
    assert info.value.reason == "future_ts"


@pytest.mark.parametrize(("case", "raw", "reason", "needle"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_records_name_the_reason_and_field(
    case: str, raw: bytes, reason: str, needle: str
) -> None:
    with pytest.raises(InvalidEvent) as info:
        decode_event(raw)
    assert info.value.reason == reason, info.value
    assert needle in info.value.detail


def test_too_large_is_refused_before_decoding() -> None:
    raw = _with(POST, text="x" * 5000)
    with pytest.raises(InvalidEvent) as info:
        decode_event(raw, max_bytes=1000)
    assert info.value.reason == "too_large"
    assert decode_event(raw, max_bytes=len(raw)).text == "x" * 5000  # type: ignore[union-attr]


def test_spec_example_decodes() -> None:
    ev = decode_event(_with(POST))
    assert isinstance(ev, Post)
    assert ev.author.followers == 1200
    assert ev.hashtags == ["acmeshoes"]
    assert ev.reply_to_author_id is None  # nullable fields may be absent


def test_defaults_for_absent_nullable_fields() -> None:
    ev = decode_event(_with(PAGEVIEW, referrer=_DROP, utm=_DROP))
    assert isinstance(ev, Pageview)
    assert (ev.referrer, ev.utm) == (None, None)
    conv = decode_event(_with(PAGEVIEW, kind="conversion", goal="signup"))
    assert isinstance(conv, Conversion) and conv.value == 0


def test_unknown_fields_are_ignored_and_not_re_encoded() -> None:
    ev = decode_event(_with(PAGEVIEW, nonce="abc", extra={"deep": [1, 2]}))
    assert b"nonce" not in encode_event(ev) and b"extra" not in encode_event(ev)


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2026-11-20T10:15:03.123Z", datetime(2026, 11, 20, 10, 15, 3, 123000, UTC).timestamp()),
        ("2026-11-20T10:15:03Z", datetime(2026, 11, 20, 10, 15, 3, tzinfo=UTC).timestamp()),
        ("2026-11-20T11:15:03+01:00", datetime(2026, 11, 20, 10, 15, 3, tzinfo=UTC).timestamp()),
        ("2026-11-20T05:45:03-04:30", datetime(2026, 11, 20, 10, 15, 3, tzinfo=UTC).timestamp()),
        ("2026-11-20t10:15:03.5z", datetime(2026, 11, 20, 10, 15, 3, 500000, UTC).timestamp()),
    ],
)
def test_parse_ts(ts: str, expected: float) -> None:
    assert parse_ts(ts) == pytest.approx(expected, abs=1e-6)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timestamps)
def test_cached_and_general_ts_parsing_agree(ts: str) -> None:
    # The canonical UTC form may take a cached fast path; the same instant written with an
    # offset always takes the general one.
    assert parse_ts(ts) == pytest.approx(parse_ts(ts[:-1] + "+00:00"), abs=1e-6)
    assert parse_ts(ts) == parse_ts(ts)  # warm cache, same answer


@pytest.mark.parametrize(
    "ts",
    [
        "2026-W47-5T10:15:03.123Z",  # ISO week date
        "2026-11-20T10:15:03.12aZ",
        "2026-11-20T10:15:60.000Z",
        "2026-11-20T10:15:6.5Z",
        "2026-11-20T24:15:03.123Z",
        "2026-02-30T10:15:03.123Z",
        "2026-11-20T10:15:03,123Z",
        "2026-11-20",
        "2026-11-20T10:15:03.123",
        "",
    ],
)
def test_not_rfc3339(ts: str) -> None:
    parse_ts("2026-11-20T10:15:03.123Z")  # warm the cache for the same minute
    with pytest.raises(ValueError):
        parse_ts(ts)


def test_format_ts_is_utc_milliseconds_with_z() -> None:
    assert (
        format_ts(datetime(2026, 11, 20, 10, 15, 3, 123456, UTC).timestamp())
        == "2026-11-20T10:15:03.123Z"
    )
    assert format_ts(0) == "1970-01-01T00:00:00.000Z"
    ev = decode_event(_with(PAGEVIEW))
    assert event_ts(ev) == pytest.approx(parse_ts("2026-11-20T10:15:03.123Z"))
