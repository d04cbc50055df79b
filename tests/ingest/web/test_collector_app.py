"""HTTP behaviour of the collector app, in-process, with an in-memory sink (the Kafka path
is covered by the integration tests in this folder)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.web.server import create_app
from ingest.web.sink import DeadLetter, Delivery
from ingest.web.wire import event_id

from .helpers import BROWSER, ORIGIN, SITE, MemorySink, make_config

CLIENT_IP = "203.0.113.77"


def event(nonce: str = "n1", **fields: Any) -> dict[str, Any]:
    return {
        "kind": "pageview",
        "site": SITE,
        "url": "https://acme.com/",
        "session": "s1",
        "nonce": nonce,
        **fields,
    }


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
async def client(tmp_path: Path, sink: MemorySink) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_config(tmp_path, rate_per_second=5.0, rate_burst=10), sink)
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://collector", headers=BROWSER
    ) as c:
        yield c


async def post(client: httpx.AsyncClient, body: Any, **headers: str) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post("/e", content=raw, headers={"origin": ORIGIN, **headers})


async def test_snippet(client: httpx.AsyncClient) -> None:
    r = await client.get("/ripple.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/javascript")
    assert len(r.content) < 6 * 1024  # a few KB
    source = r.text
    assert "document.cookie" not in source and "sendBeacon" in source and "sessionStorage" in source
    again = await client.get("/ripple.js", headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


async def test_accepts_json_and_text_plain(client: httpx.AsyncClient, sink: MemorySink) -> None:
    r = await post(client, event("a"), **{"content-type": "application/json"})
    assert r.status_code == 200 and r.json() == {"accepted": 1}
    assert r.headers["access-control-allow-origin"] == ORIGIN and r.headers["vary"] == "Origin"
    r = await post(
        client,
        [event("b"), event("c", kind="share_click", network="x")],
        **{"content-type": "text/plain;charset=UTF-8"},
    )
    assert r.status_code == 200 and r.json() == {"accepted": 2}
    assert [e.id for e in sink.events] == [event_id(SITE, "s1", n) for n in "abc"]


async def test_spooled_is_202(client: httpx.AsyncClient, sink: MemorySink) -> None:
    sink.delivery = Delivery.SPOOLED
    r = await post(client, event())
    assert r.status_code == 202 and r.json() == {"accepted": 1, "spooled": True}


async def test_spool_full_is_503_with_retry_after(
    client: httpx.AsyncClient, sink: MemorySink
) -> None:
    sink.full = True
    r = await post(client, event())
    assert r.status_code == 503 and r.json()["error"] == "unavailable"
    assert r.headers["retry-after"] == "30"


async def test_referer_is_the_fallback_origin(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/e", content=json.dumps(event()), headers={"referer": "https://acme.com/page?x=1"}
    )
    assert r.status_code == 200
    r = await client.post(
        "/e", content=json.dumps(event()), headers={"referer": "https://evil.example/"}
    )
    assert r.status_code == 403


async def test_rate_limit_per_client(
    tmp_path: Path, client: httpx.AsyncClient, sink: MemorySink
) -> None:
    statuses = [(await post(client, event(str(i)))).status_code for i in range(12)]
    assert statuses[:10] == [200] * 10  # the burst
    assert 429 in statuses[10:]
    r = await post(client, event("late"))
    assert r.status_code == 429 and r.json()["error"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["access-control-allow-origin"] == ORIGIN
    # Another client is not affected.
    other = httpx.ASGITransport(app=client._transport.app, client=("198.51.100.1", 1))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(
        transport=other, base_url="http://collector", headers=BROWSER
    ) as c2:
        assert (await post(c2, event("other"))).status_code == 200


async def test_a_batch_costs_one_token_per_event(tmp_path: Path, sink: MemorySink) -> None:
    app = create_app(make_config(tmp_path, rate_per_second=0.01, rate_burst=10), sink)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://c", headers=BROWSER
    ) as c:
        assert (await post(c, [event(str(i)) for i in range(8)])).status_code == 200
        assert (await post(c, [event(str(i)) for i in range(8, 12)])).status_code == 429
        assert (await post(c, event("x"))).status_code == 200


async def test_preflight(client: httpx.AsyncClient) -> None:
    r = await client.options(
        "/e", headers={"origin": "https://acme.com", "access-control-request-method": "POST"}
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "https://acme.com"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "Content-Type" in r.headers["access-control-allow-headers"]
    r = await client.options("/e", headers={"origin": "https://evil.example"})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers


async def test_refusals_without_dead_letters(client: httpx.AsyncClient, sink: MemorySink) -> None:
    assert (await post(client, event(), origin="https://evil.example")).status_code == 403
    assert (await post(client, event(site="nosuch.org"))).json()["error"] == "unknown_site"
    assert (await post(client, event(site="other.org"))).json()["error"] == "forbidden_origin"
    assert sink.items == []


async def test_malformed_input_is_dead_lettered(
    client: httpx.AsyncClient, sink: MemorySink
) -> None:
    r = await post(client, b'{"kind": "pageview", "site": ')
    assert r.status_code == 400 and r.json()["error"] == "invalid_json"
    r = await post(client, b"x" * 20_000)
    assert r.status_code == 413
    assert sink.dead == [
        DeadLetter(b'{"kind": "pageview", "site": ', "invalid_json", "Input data was truncated"),
        DeadLetter(b"x" * 16384, "too_large", "body exceeds 16384 bytes"),
    ]


async def test_wrong_method_and_path(client: httpx.AsyncClient) -> None:
    assert (await client.get("/e")).status_code == 405
    assert (await client.get("/nope")).status_code == 404


async def test_health_and_metrics_and_no_ip_anywhere(
    client: httpx.AsyncClient, sink: MemorySink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await post(client, event())
    await post(client, b"{")
    await post(client, event(), origin="https://evil.example")
    health = await client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    metrics = (await client.get("/metrics")).text
    assert f'ripple_collector_requests_total{{site="{SITE}",status="2xx"}}' in metrics
    assert 'ripple_collector_requests_total{site="unknown",status="4xx"}' in metrics
    assert CLIENT_IP not in metrics and CLIENT_IP not in caplog.text
    app = client._transport.app  # type: ignore[attr-defined]
    buckets = app.state.collector.buckets._buckets
    assert buckets and all(CLIENT_IP.encode() not in k for k in buckets)
