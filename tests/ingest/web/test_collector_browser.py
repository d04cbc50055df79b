"""A real browser: headless Chromium loads a page with the snippet, arriving from a social
referrer with UTM parameters, clicks a share button, fires a conversion and navigates like
a single-page app; the canonical events arrive on ``<ns>.events`` in the real broker."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from .cdp import DESKTOP_UA, CDPSession, chromium_page
from .helpers import SITE, read_topic, run_collector

pytestmark = [pytest.mark.integration, pytest.mark.browser]

REFERRER = "https://bsky.app/profile/acme.bsky.social/post/3kq2"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Acme shoes</title>
<script defer src="{collector}/ripple.js" data-site="{site}"></script></head>
<body>
<h1>Acme shoes</h1>
<a id="share" href="#" data-ripple-share="Bluesky" style="display:block;width:200px;height:50px">
  <span>Share on Bluesky</span></a>
</body></html>
"""


@contextmanager
def serve_page(html: str) -> Iterator[str]:
    """A plain HTTP server for the test site (another origin than the collector)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def click(page: CDPSession, selector: str) -> None:
    """A real mouse click in the middle of the element (not element.click())."""
    box = await page.evaluate(
        f"(() => {{ const r = document.querySelector({selector!r}).getBoundingClientRect();"
        " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
    )
    for kind in ("mousePressed", "mouseReleased"):
        await page.send(
            "Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1
        )


async def wait_for(page: CDPSession, expression: str, timeout: float = 15) -> Any:
    for _ in range(int(timeout * 10)):
        value = await page.evaluate(expression)
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {expression}")


async def test_snippet_in_chromium_sends_the_canonical_events(
    tmp_path: Path, stack: Any, namespace: str
) -> None:
    stack.create_topics(f"{namespace}.events", f"{namespace}.dlq", partitions=3)
    with (
        run_collector(tmp_path, stack.bootstrap, namespace) as collector,
        serve_page(PAGE.format(collector=collector.url, site=SITE)) as site_url,
    ):
        utms = "utm_source=bsky&utm_medium=social&utm_campaign=BF2026"
        # A token in the query and a fragment: neither may reach Kafka (EVENTS.md r2).
        landing = f"{site_url}/shoes?{utms}&token=s3cr3t#top"
        async with chromium_page(tmp_path / "profile") as page:
            await page.send("Page.enable")
            await page.send("Network.enable")
            await page.send(
                "Page.navigate", url=landing, referrer=REFERRER, referrerPolicy="unsafeUrl"
            )
            await page.wait_event("Page.loadEventFired")
            await wait_for(page, "typeof window.ripple === 'function'")
            assert await page.evaluate("navigator.webdriver") is False
            assert "HeadlessChrome" not in await page.evaluate("navigator.userAgent")
            assert await page.evaluate("document.referrer") == REFERRER
            session = await page.evaluate("sessionStorage.getItem('ripple_session')")
            assert session and len(session) == 32

            await click(page, "#share span")
            await page.evaluate("ripple('conversion', {goal: 'signup', value: 49.5})")
            # Single-page navigation: a pageview whose referrer is the previous page.
            await page.evaluate("history.pushState({}, '', '/checkout')")
            # The same page again (replaceState): no view.
            await page.evaluate("history.replaceState({}, '', '/checkout')")

            records = await read_topic(
                stack.bootstrap, f"{namespace}.events", min_count=4, settle=2
            )
            cookies = (await page.send("Network.getAllCookies"))["cookies"]
            assert cookies == []  # no cookies, neither the page's nor the collector's
            assert await page.evaluate("document.cookie") == ""

    events = [r.json() for r in records]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_kind.setdefault(e["kind"], []).append(e)
    assert sorted(by_kind) == ["conversion", "pageview", "share_click"], events
    assert len(events) == 4, events

    landing_url = f"{site_url}/shoes?{utms}"  # no fragment, no token
    first, spa = sorted(by_kind["pageview"], key=lambda e: e["url"] != landing_url)
    for e in events:
        assert e["v"] == 1 and e["platform"] == "web" and e["site"] == SITE
        assert e["session"] == session
        assert e["id"].startswith("web:") and len(e["id"]) == 4 + 32
        assert e["ts"].endswith("Z") and e["ingested_at"].endswith("Z")
    assert len({e["id"] for e in events}) == 4

    assert first["url"] == landing_url
    assert first["referrer"] == REFERRER
    assert first["utm"] == {
        "source": "bsky",
        "medium": "social",
        "campaign": "bf2026",
        "content": None,
        "term": None,
    }

    (share,) = by_kind["share_click"]
    assert share["network"] == "bluesky" and share["url"] == landing_url

    (conversion,) = by_kind["conversion"]
    assert conversion["goal"] == "signup" and conversion["value"] == 49.5

    assert spa["url"] == f"{site_url}/checkout"
    assert spa["referrer"] == landing_url  # the previous page of the site: cleaned too
    assert spa["utm"] == {
        "source": None,
        "medium": None,
        "campaign": None,
        "content": None,
        "term": None,
    }

    # Web events of one session share a key, so they stay in order in one partition.
    assert len({r.key for r in records}) == 1 and records[0].key == f"{SITE}|{session}".encode()


def bot_count(metrics_text: str, site: str = SITE) -> float:
    prefix = f'ripple_collector_bot_requests_total{{site="{site}"}} '
    return sum(
        float(line[len(prefix) :]) for line in metrics_text.splitlines() if line.startswith(prefix)
    )


@pytest.mark.parametrize(
    ("user_agent", "automated"),
    [
        pytest.param(None, False, id="HeadlessChrome-user-agent"),
        pytest.param(DESKTOP_UA, True, id="navigator.webdriver"),
    ],
)
async def test_bot_browsers_reach_nothing(
    tmp_path: Path, stack: Any, namespace: str, user_agent: str | None, automated: bool
) -> None:
    """A real headless Chromium, once with its own User-Agent and once automated (a desktop
    User-Agent but ``navigator.webdriver``): answered 204, counted, nothing in Kafka."""
    stack.create_topics(f"{namespace}.events", f"{namespace}.dlq", partitions=3)
    with (
        run_collector(tmp_path, stack.bootstrap, namespace) as collector,
        serve_page(PAGE.format(collector=collector.url, site=SITE)) as site_url,
    ):
        async with chromium_page(
            tmp_path / "profile", user_agent=user_agent, automated=automated
        ) as page:
            await page.send("Page.enable")
            await page.send("Network.enable")
            await page.send("Page.navigate", url=f"{site_url}/shoes")
            await page.wait_event("Page.loadEventFired")
            await wait_for(page, "typeof window.ripple === 'function'")
            webdriver = await page.evaluate("navigator.webdriver")
            assert webdriver is automated, webdriver
            await page.evaluate("ripple('conversion', {goal: 'signup', value: 1})")
            # The pageview and the conversion: both counted as bot requests (answered 204;
            # a cross-origin beacon's status is not visible to the page).
            count = 0.0
            async with httpx.AsyncClient() as client:
                for _ in range(150):
                    count = bot_count((await client.get(collector.url + "/metrics")).text)
                    if count >= 2:
                        break
                    await asyncio.sleep(0.1)
            assert count == 2
    for topic in (f"{namespace}.events", f"{namespace}.dlq"):
        assert await read_topic(stack.bootstrap, topic, settle=2) == []
