"""Collector hardening (issue 9), in-process: IPv6 rate limiting by /64, /metrics on its
own port, page URLs cleaned, bot requests kept out, and the spool's crash and size rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.web.server import create_app
from ingest.web.spool import HEADER_BYTES, Spool
from ingest.web.wire import page_url

from .helpers import BROWSER, CHROME_UA, ORIGIN, SITE, MemorySink, make_config


def event(nonce: str = "n1", **fields: Any) -> dict[str, Any]:
    return {"kind": "pageview", "site": SITE, "url": "https://acme.com/", "session": "s1",
            "nonce": nonce, **fields}  # fmt: skip


def client_for(app: Any, ip: str = "203.0.113.7", **headers: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(
        transport=transport, base_url="http://c", headers={**BROWSER, "origin": ORIGIN, **headers}
    )


async def test_ipv6_clients_share_a_bucket_per_64(tmp_path: Path) -> None:
    app = create_app(make_config(tmp_path, rate_per_second=0.001, rate_burst=2), MemorySink())
    statuses = []
    for ip in ("2001:db8:0:1::1", "2001:db8:0:1:8000::2", "2001:db8:0:1:ffff:ffff:ffff:fffe"):
        async with client_for(app, ip) as c:
            statuses.append((await c.post("/e", content=json.dumps(event(ip)))).status_code)
    assert statuses == [200, 200, 429]  # three addresses, one /64: one client
    async with client_for(app, "2001:db8:0:2::1") as c:  # the next /64 is another client
        assert (await c.post("/e", content=json.dumps(event("x")))).status_code == 200
    async with client_for(app, "::ffff:192.0.2.9") as c:  # IPv4-mapped: the IPv4 address
        assert (await c.post("/e", content=json.dumps(event("y")))).status_code == 200
    async with client_for(app, "192.0.2.9") as c:
        assert (await c.post("/e", content=json.dumps(event("z")))).status_code == 200
    async with client_for(app, "192.0.2.9") as c:
        assert (await c.post("/e", content=json.dumps(event("w")))).status_code == 429


@pytest.mark.parametrize("metrics_port", [0, 19999])
async def test_metrics_on_the_public_port_only_when_no_metrics_port(
    tmp_path: Path, metrics_port: int
) -> None:
    app = create_app(make_config(tmp_path, metrics_port=metrics_port), MemorySink())
    async with client_for(app) as c:
        r = await c.get("/metrics")
    assert r.status_code == (200 if metrics_port == 0 else 404)
    if metrics_port == 0:
        assert "ripple_collector_requests_total" in r.text


def test_page_url_keeps_only_utm_and_no_fragment() -> None:
    assert page_url("https://acme.com/p?utm_source=bsky&token=s3cr3t&UTM_Medium=Social#top") == (
        "https://acme.com/p?utm_source=bsky&UTM_Medium=Social"
    )
    assert page_url("https://acme.com/p?utm_campaign=bf%202026&email=a%40b.c") == (
        "https://acme.com/p?utm_campaign=bf%202026"  # kept byte for byte
    )
    assert page_url("https://acme.com/?q=1#x") == "https://acme.com/"
    assert page_url("https://acme.com/a") == "https://acme.com/a"
    assert page_url("ftp://acme.com/?a=1") == "ftp://acme.com/?a=1"  # refused later, as sent


async def test_collector_cleans_page_urls(tmp_path: Path) -> None:
    sink = MemorySink()
    app = create_app(make_config(tmp_path), sink)
    body = [
        event("a", url="https://acme.com/shoes?sid=42&utm_source=bsky#reviews"),
        {"kind": "share_click", "site": SITE, "session": "s1", "nonce": "b",
         "network": "x", "url": "https://acme.com/p?ref=me#top"},
    ]  # fmt: skip
    async with client_for(app) as c:
        assert (await c.post("/e", content=json.dumps(body))).status_code == 200
    assert [e.url for e in sink.events] == [
        "https://acme.com/shoes?utm_source=bsky",
        "https://acme.com/p",
    ]


async def test_bot_requests_are_204_and_kept_out(tmp_path: Path) -> None:
    sink = MemorySink()
    app = create_app(make_config(tmp_path), sink)
    crawler = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    async with client_for(app, **{"user-agent": crawler}) as c:
        r = await c.post("/e", content=b"not even json")  # never parsed: no dead letter
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == ORIGIN
    async with client_for(app, **{"user-agent": CHROME_UA}) as c:
        r = await c.post("/e", content=json.dumps([event("a"), event("b", automated=True)]))
        assert r.status_code == 204
        r = await c.post("/e", content=json.dumps(event("c", automated=False)))
        assert r.status_code == 200
    assert sink.items and [e.id for e in sink.events] == [sink.events[0].id]
    assert not sink.dead


# -- the spool -----------------------------------------------------------------------------


def test_a_stale_sidecar_never_skips_frames(tmp_path: Path) -> None:
    """The case of a crash between emptying the file and writing the sidecar: the sidecar
    names an offset of the previous file; the new file's frames must all come back."""
    path = tmp_path / "web.spool"
    with Spool(path, max_bytes=1 << 20, max_age_seconds=60) as sp:
        for i in range(10):
            sp.append(f"old {i}".encode())
        sp.read(max_frames=6)
        sp.commit(6)
        stale = Path(f"{path}.offset").read_bytes()  # offset 6 frames in, of this file
        sp.read()
        sp.commit(4)  # all delivered: the file is emptied
        for i in range(10):
            sp.append(f"new {i}".encode())  # a new outage
    Path(f"{path}.offset").write_bytes(stale)  # as if the sidecar write was lost
    with Spool(path, max_bytes=1 << 20, max_age_seconds=60) as sp:
        assert [p for _, p in sp.read()] == [f"new {i}".encode() for i in range(10)]


def test_the_sidecar_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    path = tmp_path / "web.spool"
    with Spool(path, max_bytes=1 << 20, max_age_seconds=60) as sp:
        sp.append(b"a")
        sp.append(b"b")
        monkeypatch.setattr(os, "fsync", fsync)
        sp.read(max_frames=1)
        sp.commit(1)
    assert synced == [f"{path}.offset"]


def test_compaction_bounds_the_file_and_keeps_order_and_offsets(tmp_path: Path) -> None:
    path = tmp_path / "web.spool"
    payload = b"x" * 1000
    with Spool(path, max_bytes=1 << 24, max_age_seconds=60, compact_bytes=64 * 1024) as sp:
        max_size, last_offset, n = 0, -1, 0
        for _ in range(200):  # never empty: 30 frames appended, 29 delivered, each round
            for _ in range(30):
                sp.append(payload + str(n).encode())
                n += 1
            frames = sp.read(max_frames=29)
            assert all(o > last_offset for o, _ in frames)  # offsets keep growing
            last_offset = frames[-1][0]
            sp.commit(len(frames))
            max_size = max(max_size, path.stat().st_size)
        assert sp.compactions > 0 and sp.pending == 200
        assert max_size < 2 * 64 * 1024 + 250 * 1100  # threshold + the undelivered tail
        rest = [p for _, p in sp.read(max_frames=1000)]
    with Spool(path, max_bytes=1 << 24, max_age_seconds=60) as again:  # and after a restart
        assert [p for _, p in again.read(max_frames=1000)] == rest
    assert rest == [payload + str(i).encode() for i in range(n - 200, n)]
    assert path.stat().st_size >= HEADER_BYTES


def test_metrics_port_serves_metrics_and_the_public_port_does_not(tmp_path: Path) -> None:
    from .helpers import free_port, run_collector

    port = free_port()
    with run_collector(
        tmp_path, "127.0.0.1:9", "ripple", wait_healthy=False, metrics_port=port
    ) as c:
        assert httpx.get(c.url + "/metrics", timeout=5).status_code == 404
        r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert r.status_code == 200 and "ripple_collector_spooled_events" in r.text
        assert httpx.get(c.url + "/healthz", timeout=5).status_code == 200  # degraded, up


def test_a_spool_of_the_old_format_is_upgraded_without_loss(tmp_path: Path) -> None:
    import struct
    import time as _time
    import zlib

    path = tmp_path / "web.spool"
    frames = [f"legacy {i}".encode() for i in range(5)]
    raw = b"".join(struct.pack("<IId", len(p), zlib.crc32(p), _time.time()) + p for p in frames)
    path.write_bytes(raw)
    delivered = sum(16 + len(p) for p in frames[:2])  # the old sidecar: 2 frames delivered
    Path(f"{path}.offset").write_bytes(struct.pack("<Q", delivered))
    with Spool(path, max_bytes=1 << 20, max_age_seconds=3600) as sp:
        assert sp.pending == 3
        assert [p for _, p in sp.read()] == frames[2:]
