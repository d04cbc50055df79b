"""The collector's wire format → canonical events (ingest/web/wire.py) and site checks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.config import Site
from ingest.events import (
    Conversion,
    Pageview,
    ShareClick,
    decode_event,
    encode_event,
    format_ts,
    parse_ts,
)
from ingest.web.sites import SiteRegistry, origin_host, request_origin
from ingest.web.wire import Rejection, event_id, parse_body, receive_ts

NOW = parse_ts("2026-11-20T10:15:03.123Z")


def client(kind: Any = "pageview", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": kind,
        "site": "acme.com",
        "url": "https://acme.com/",
        "session": "s",
        "nonce": "n",
    }
    base.update(fields)
    return base


def parse(obj: Any, max_batch: int = 50) -> list[Any]:
    return parse_body(json.dumps(obj).encode(), NOW, max_batch=max_batch)


def test_pageview_gets_the_server_envelope() -> None:
    (ev,) = parse(
        client(
            referrer="https://bsky.app/x", utm={"source": "BSKY", "medium": "Social", "term": ""}
        )
    )
    assert isinstance(ev, Pageview)
    assert ev.v == 1 and ev.platform == "web"
    assert ev.ts == ev.ingested_at == "2026-11-20T10:15:03.123Z"
    assert ev.id == event_id("acme.com", "s", "n")
    assert ev.utm is not None and (ev.utm.source, ev.utm.medium, ev.utm.term) == (
        "bsky",
        "social",
        None,
    )
    assert ev.referrer == "https://bsky.app/x"


def test_client_cannot_choose_envelope_fields() -> None:
    (ev,) = parse(
        client(id="web:mine", ts="2001-01-01T00:00:00.000Z", v=9, platform="x", ingested_at="x")
    )
    assert ev.id == event_id("acme.com", "s", "n")
    assert ev.ts == format_ts(NOW) and ev.v == 1 and ev.platform == "web"


def test_empty_referrer_becomes_null_and_nonce_is_not_kept() -> None:
    (ev,) = parse(client(referrer=""))
    assert ev.referrer is None
    assert b"nonce" not in encode_event(ev)


def test_each_web_kind() -> None:
    share, conv = parse(
        [
            client("share_click", network="x", nonce="a"),
            client("conversion", goal="buy", value=9.5, nonce="b"),
        ]
    )
    assert isinstance(share, ShareClick) and share.network == "x"
    assert isinstance(conv, Conversion) and conv.goal == "buy" and conv.value == 9.5
    (conv0,) = parse(client("conversion", goal="signup"))
    assert isinstance(conv0, Conversion) and conv0.value == 0


def test_ids_are_stable_and_distinct() -> None:
    assert event_id("a", "s", "n") == event_id("a", "s", "n")
    assert (
        len(
            {
                event_id("a", "s", "n"),
                event_id("a", "s", "m"),
                event_id("a", "t", "n"),
                event_id("b", "s", "n"),
            }
        )
        == 4
    )
    # No ambiguity from concatenation.
    assert event_id("ab", "c", "n") != event_id("a", "bc", "n")
    first = parse(client())[0]
    retried = parse(client())[0]  # a retry of the same request
    assert first.id == retried.id


def test_output_is_what_the_processors_decode() -> None:
    (ev,) = parse(client(utm={"source": "bsky"}))
    assert decode_event(encode_event(ev)) == ev


@pytest.mark.parametrize(
    ("obj", "status", "reason", "needle"),
    [
        ([], 400, "invalid_json", "empty batch"),
        ([client(nonce=str(i)) for i in range(3)], 413, "too_large", "limit 2"),
        ([client(), 5], 400, "wrong_type", "`$[1]`"),
        (client(kind=None), 400, "missing_field", "$.kind"),
        (client(kind="reaction"), 400, "unknown_kind", "'reaction'"),
        (client(kind=["pageview"]), 400, "wrong_type", "$.kind"),
        (client(nonce=""), 400, "wrong_type", "$.nonce"),
        (client(nonce=5), 400, "wrong_type", "$.nonce"),
        (client(site=None), 400, "missing_field", "$.site"),
        (client(session={"a": 1}), 400, "wrong_type", "$.session"),
        (client(url=None), 400, "wrong_type", "$.url"),
        ([client(), client(url=1, nonce="x")], 400, "wrong_type", "$[1].url"),
        (client("share_click", network="friendster"), 400, "wrong_type", "$.network"),
        (client("conversion", goal="g", value=[1]), 400, "out_of_range", "$.value"),  # r2
    ],
)
def test_rejections_name_the_problem(obj: Any, status: int, reason: str, needle: str) -> None:
    with pytest.raises(Rejection) as info:
        parse(obj, max_batch=2)
    assert (info.value.status, info.value.reason) == (status, reason)
    assert needle in info.value.detail
    assert info.value.dead_letter


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"", "empty body"),
        (b"{", "truncated"),
        (b"\xff", "malformed"),
        (b'{"kind": "\xff"}', "UTF-8"),
        (b"[" * 3000 + b"]" * 3000, "nested too deeply"),
        (b'{"a": 1e999}', "out of range"),
    ],
)
def test_undecodable_bodies(raw: bytes, needle: str) -> None:
    with pytest.raises(Rejection) as info:
        parse_body(raw, NOW, max_batch=50)
    assert info.value.reason == "invalid_json" and needle in info.value.detail


def test_details_are_bounded() -> None:
    with pytest.raises(Rejection) as info:
        parse(client(kind="k" * 10_000))
    assert len(info.value.detail) <= 300


@settings(deadline=None)
@given(st.floats(min_value=0, max_value=7e9, allow_nan=False))
def test_receive_ts_equals_format_ts(t: float) -> None:
    assert receive_ts(t) == format_ts(t)


FIELDS = ["kind", "site", "url", "session", "nonce", "utm", "referrer", "network", "goal", "value"]
VALUES = (
    st.sampled_from(["pageview", "share_click", "conversion", "x", "acme.com", ""])
    | st.none()
    | st.integers()
    | st.text(max_size=5)
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(FIELDS),
        VALUES
        | st.lists(VALUES, max_size=2)
        | st.dictionaries(st.text(max_size=3), VALUES, max_size=2),
    )
)
def test_any_object_is_an_event_or_a_rejection(obj: dict[str, Any]) -> None:
    try:
        events = parse(obj)
    except Rejection as exc:
        assert exc.status in (400, 413) and exc.reason
    else:
        assert decode_event(encode_event(events[0])) == events[0]


# -- sites and origins --------------------------------------------------------------------------


def test_origin_host() -> None:
    assert origin_host("https://www.Acme.com:8443") == "www.acme.com"
    assert origin_host("http://127.0.0.1:5000") == "127.0.0.1"
    assert origin_host("https://acme.com.") == "acme.com"
    for bad in (
        None,
        "",
        "null",
        "file:///x",
        "acme.com",
        "https://",
        "javascript:alert(1)",
        "http://[::1",
    ):
        assert origin_host(bad) is None, bad


def test_request_origin_falls_back_to_referer() -> None:
    assert request_origin("https://a.com", "https://b.com/x") == "https://a.com"
    assert request_origin(None, "https://b.com/x?y=1") == "https://b.com"
    assert request_origin(None, "not a url") is None
    assert request_origin(None, None) is None


def test_site_registry() -> None:
    reg = SiteRegistry([Site("acme.com", ["acme.com", "WWW.acme.com"]), Site("b.org", ["b.org"])])
    assert reg.known("acme.com") and not reg.known("www.acme.com")
    assert reg.allows("acme.com", "www.acme.com") and not reg.allows("acme.com", "b.org")
    assert not reg.allows("acme.com", "evil.acme.com")  # exact hosts, no implied subdomains
    assert reg.serves_host("b.org") and not reg.serves_host("c.org") and not reg.serves_host(None)
    assert not SiteRegistry([])
