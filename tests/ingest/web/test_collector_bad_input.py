"""Malformed and hostile requests against a real collector process and the real broker:
the right status, a clear JSON message, a dead letter where EVENTS.md wants one, and the
service still serving afterwards."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.producer import DLQ_REASON, DLQ_SOURCE
from ingest.web.wire import event_id

from .helpers import BROWSER, ORIGIN, SITE, read_topic, run_collector

pytestmark = pytest.mark.integration

LIMIT = 16384


def ev(kind: Any = "pageview", nonce: Any = "n", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": kind,
        "site": SITE,
        "url": "https://acme.com/",
        "session": "s-bad",
        "nonce": nonce,
    }
    if kind == "share_click":
        base["network"] = "x"
    if kind == "conversion":
        base["goal"] = "signup"
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def js(obj: Any) -> bytes:
    return json.dumps(obj).encode()


@dataclass
class Case:
    name: str
    body: bytes
    status: int
    error: str
    needle: str = ""  # text the detail must contain
    dead_letter: bool = True
    headers: dict[str, str] | None = None


deep = b"[" * 20000 + b"]" * 20000
CASES = [
    Case("truncated json", js(ev(nonce="trunc"))[:-7], 400, "invalid_json", "truncated"),
    Case("not json", b"kind=pageview&site=acme.com", 400, "invalid_json", "malformed"),
    Case("empty body", b"", 400, "invalid_json", "empty body"),
    Case("whitespace body", b"  \n ", 400, "invalid_json", "empty body"),
    Case("array of numbers", b"[1, 2, 3]", 400, "wrong_type", "$[0]"),
    Case("empty batch", b"[]", 400, "invalid_json", "empty batch"),
    Case("json string", b'"pageview"', 400, "wrong_type", "expected a JSON object"),
    Case("json null", b"null", 400, "wrong_type", "expected a JSON object"),
    Case("deep nesting", deep[:8000] + deep[-8000:], 400, "invalid_json", "nested too deeply"),
    Case(
        "deep nesting in a field",
        js(ev(nonce="deep"))[:-1] + b', "x": ' + b"[" * 6000 + b"]" * 6000 + b"}",
        400,
        "invalid_json",
        "nested too deeply",
    ),
    Case(
        "invalid utf-8",
        js(ev(nonce="utf8", url="U"))[:].replace(b'"U"', b'"\xff\xfe\xfd"'),
        400,
        "invalid_json",
        "UTF-8",
    ),
    Case(
        "lone surrogate escape",
        js(ev(nonce="surr", url="U")).replace(b'"U"', b'"\\ud800"'),
        400,
        "invalid_json",
        "surrogate",
    ),
    Case("unknown kind", js(ev("like", nonce="uk")), 400, "unknown_kind", "$.kind"),
    Case("social kind via the web", js(ev("post", nonce="post")), 400, "unknown_kind", "'post'"),
    Case("kind a number", js(ev(nonce="kn", kind=7)), 400, "wrong_type", "$.kind"),
    Case("no kind", js(ev(nonce="nk", kind=...)), 400, "missing_field", "$.kind"),
    Case("no nonce", js(ev(nonce=...)), 400, "missing_field", "$.nonce"),
    Case("no session", js(ev(nonce="ns", session=...)), 400, "missing_field", "$.session"),
    Case("site a list", js(ev(nonce="sl", site=[SITE])), 400, "wrong_type", "$.site"),
    Case("url a number", js(ev(nonce="un", url=12)), 400, "wrong_type", "$.url"),
    Case("utm a string", js(ev(nonce="us", utm="bsky")), 400, "wrong_type", "$.utm"),
    Case(
        "utm value an object",
        js(ev(nonce="uo", utm={"source": {"a": 1}})),
        400,
        "wrong_type",
        "$.utm.source",
    ),
    Case(
        "unknown share network",
        js(ev("share_click", nonce="sn", network="myspace")),
        400,
        "wrong_type",
        "$.network",
    ),
    Case(
        "conversion value a string",
        js(ev("conversion", nonce="cv", value="12")),
        400,
        "out_of_range",  # EVENTS.md r2: a value that is not a finite number 0..10^12
        "$.value",
    ),
    Case(
        "number out of range",
        js(ev("conversion", nonce="or", value=1)).replace(b'"value": 1', b'"value": 1e999'),
        400,
        "invalid_json",
        "out of range",
    ),
    Case("nonce too long", js(ev(nonce="n" * 65)), 400, "wrong_type", "$.nonce"),
    Case(
        "one bad event in a batch",
        js([ev(nonce="b1"), ev(nonce="b2", url=None), ev(nonce="b3")]),
        400,
        "wrong_type",
        "$[1].url",
    ),
    Case(
        "mixed sites in a batch",
        js([ev(nonce="m1"), ev(nonce="m2", site="other.org")]),
        400,
        "wrong_type",
        "one site",
    ),
    Case(
        "batch over the limit",
        js([ev(nonce=f"bl{i}") for i in range(51)]),
        413,
        "too_large",
        "limit 50",
    ),
    Case(
        "huge string",
        js(ev(nonce="huge", url="https://acme.com/" + "a" * 20000)),
        413,
        "too_large",
        str(LIMIT),
    ),
    Case(
        "oversize body",
        b'{"kind": "pageview", "junk": "' + b"z" * 200_000 + b'"}',
        413,
        "too_large",
        str(LIMIT),
    ),
    # Not the sites' data: refused without a dead letter.
    Case(
        "foreign origin",
        js(ev(nonce="fo")),
        403,
        "forbidden_origin",
        "Origin",
        False,
        {"origin": "https://evil.example"},
    ),
    Case(
        "origin null",
        js(ev(nonce="on")),
        403,
        "forbidden_origin",
        "Origin",
        False,
        {"origin": "null"},
    ),
    Case("no origin, no referer", js(ev(nonce="no")), 403, "forbidden_origin", "Origin", False, {}),
    Case(
        "look-alike origin",
        js(ev(nonce="la")),
        403,
        "forbidden_origin",
        "Origin",
        False,
        {"origin": "https://acme.com.evil.example"},
    ),
    Case(
        "unknown site",
        js(ev(nonce="us2", site="nosuch.org")),
        403,
        "unknown_site",
        "nosuch.org",
        False,
    ),
    Case(
        "another site's event",
        js(ev(nonce="os", site="other.org")),
        403,
        "forbidden_origin",
        "other.org",
        False,
    ),
]


async def test_bad_requests_get_clear_errors_and_dead_letters(
    tmp_path: Path, stack: Any, namespace: str
) -> None:
    assert len(CASES) >= 20
    stack.create_topics(f"{namespace}.events", f"{namespace}.dlq", partitions=3)
    with run_collector(tmp_path, stack.bootstrap, namespace) as collector:
        async with httpx.AsyncClient(base_url=collector.url, timeout=30, headers=BROWSER) as client:
            for case in CASES:
                headers = (
                    {"origin": ORIGIN, "content-type": "text/plain"}
                    if case.headers is None
                    else case.headers
                )
                r = await client.post("/e", content=case.body, headers=headers)
                assert r.status_code == case.status, (case.name, r.status_code, r.text)
                body = r.json()
                assert body["error"] == case.error, (case.name, body)
                assert case.needle in body["detail"], (case.name, body)
                assert len(body["detail"]) <= 300
                if (
                    case.status != 403
                ):  # the page may read the error: CORS headers for allowed origins
                    assert r.headers["access-control-allow-origin"] == ORIGIN

            # Still serving: a good event right after all of that is accepted and produced.
            good = ev(
                nonce="after-the-storm",
                referrer="https://bsky.app/",
                utm={"source": "BSKY", "medium": "Social"},
            )
            r = await client.post("/e", content=js(good), headers={"origin": ORIGIN})
            assert r.status_code == 200 and r.json() == {"accepted": 1}
            assert (await client.get("/healthz")).json()["status"] == "ok"
            metrics = (await client.get("/metrics")).text
            assert 'ripple_ingest_dead_letters_total{reason="invalid_json",source="web"}' in metrics

    expected_dlq = [c for c in CASES if c.dead_letter]
    dead = await read_topic(stack.bootstrap, f"{namespace}.dlq", min_count=len(expected_dlq))
    assert len(dead) == len(
        expected_dlq
    )  # exactly one per refused request, none for foreign traffic
    by_value = {d.value: d for d in dead}
    for case in expected_dlq:
        kept = case.body[:LIMIT]
        assert kept in by_value, case.name
        rec = by_value[kept]
        assert rec.headers[DLQ_REASON].decode() == case.error, case.name
        assert rec.headers[DLQ_SOURCE] == b"web"

    events = await read_topic(stack.bootstrap, f"{namespace}.events", min_count=1)
    assert [e.json()["id"] for e in events] == [event_id(SITE, "s-bad", "after-the-storm")]
    stored = events[0].json()
    assert stored["utm"]["source"] == "bsky" and stored["utm"]["medium"] == "social"
    assert stored["platform"] == "web" and stored["v"] == 1 and "nonce" not in stored
