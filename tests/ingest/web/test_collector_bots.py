"""Bot traffic against the real broker (issue 12): requests from real crawlers' User-Agent
strings are answered 204 and leave Kafka untouched; real browsers' are kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from .helpers import CHROME_UA, FIREFOX_UA, ORIGIN, SAFARI_UA, SITE, read_topic, run_collector

pytestmark = pytest.mark.integration

CRAWLERS = {
    "googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "bingbot": "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "gptbot": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
    "+https://openai.com/gptbot)",
    "curl": "curl/8.5.0",
    "headless": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/131.0.0.0 Safari/537.36",
}
BROWSERS = {"chrome": CHROME_UA, "firefox": FIREFOX_UA, "safari": SAFARI_UA}


def body(nonce: str) -> bytes:
    return json.dumps({"kind": "pageview", "site": SITE, "url": f"https://acme.com/{nonce}",
                       "session": "s-bots", "nonce": nonce}).encode()  # fmt: skip


async def test_crawlers_leave_kafka_untouched_and_browsers_do_not(
    tmp_path: Path, stack: Any, namespace: str
) -> None:
    stack.create_topics(f"{namespace}.events", f"{namespace}.dlq", partitions=3)
    with run_collector(tmp_path, stack.bootstrap, namespace) as collector:
        async with httpx.AsyncClient(base_url=collector.url, timeout=30) as client:
            for name, ua in CRAWLERS.items():
                r = await client.post(
                    "/e", content=body(name), headers={"origin": ORIGIN, "user-agent": ua}
                )
                assert r.status_code == 204, (name, r.status_code, r.text)
            # Garbage from a crawler is not a dead letter either: it is never read.
            r = await client.post(
                "/e", content=b"{oops", headers={"origin": ORIGIN, "user-agent": CRAWLERS["curl"]}
            )
            assert r.status_code == 204
            bots = await read_topic(stack.bootstrap, f"{namespace}.events", settle=2)
            assert bots == []
            for name, ua in BROWSERS.items():
                r = await client.post(
                    "/e", content=body(name), headers={"origin": ORIGIN, "user-agent": ua}
                )
                assert r.status_code == 200, (name, r.status_code, r.text)
            metrics = (await client.get("/metrics")).text
        assert f'ripple_collector_bot_requests_total{{site="{SITE}"}} 6.0' in metrics
    events = await read_topic(stack.bootstrap, f"{namespace}.events", min_count=3, settle=2)
    assert sorted(r.json()["url"].rsplit("/", 1)[1] for r in events) == sorted(BROWSERS)
    assert await read_topic(stack.bootstrap, f"{namespace}.dlq", settle=1) == []
