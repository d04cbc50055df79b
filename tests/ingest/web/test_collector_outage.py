"""Broker outage: Kafka stops while 5,000 events are being posted and comes back; every
accepted event reaches ``<ns>.events`` exactly once (by id), the collector answering 202
from its spool meanwhile and reporting itself degraded.

Self-contained: it stops and restarts the shared stack's broker and always restores it.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.web.wire import event_id

from .helpers import BROWSER, ORIGIN, SITE, read_topic, run_collector

pytestmark = pytest.mark.integration

TOTAL = 5000


def body(i: int) -> bytes:
    return json.dumps(
        {
            "kind": "pageview",
            "site": SITE,
            "url": f"https://acme.com/p/{i}",
            "session": f"s{i % 97}",
            "nonce": f"n{i}",
        }
    ).encode()


async def post_range(
    client: httpx.AsyncClient, numbers: range, statuses: Counter[int], workers: int = 16
) -> None:
    todo = iter(numbers)

    async def worker() -> None:
        for i in todo:
            r = await client.post("/e", content=body(i), headers={"origin": ORIGIN})
            statuses[r.status_code] += 1
            assert r.status_code in (200, 202), r.text

    await asyncio.gather(*(worker() for _ in range(workers)))


async def test_outage_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, stack: Any, namespace: str
) -> None:
    stack.create_topics(f"{namespace}.events", f"{namespace}.dlq", partitions=3)
    statuses: Counter[int] = Counter()
    settings: dict[str, Any] = {"rate_per_second": 1_000_000.0, "rate_burst": 1_000_000}
    try:
        with run_collector(tmp_path, stack.bootstrap, namespace, **settings) as collector:
            async with httpx.AsyncClient(
                base_url=collector.url, timeout=60, headers=BROWSER
            ) as client:
                await post_range(client, range(0, 1500), statuses)
                # The broker goes away while requests keep coming.
                await asyncio.gather(
                    asyncio.to_thread(stack.stop_kafka),
                    post_range(client, range(1500, 2500), statuses),
                )
                await post_range(client, range(2500, 3500), statuses)  # entirely during the outage
                health = (await client.get("/healthz")).json()
                assert health["status"] == "degraded" and health["spooled_records"] > 0, health
                assert statuses[202] >= 1000
                # Back, while still more requests come.
                await asyncio.gather(
                    asyncio.to_thread(stack.start_kafka),
                    post_range(client, range(3500, TOTAL), statuses),
                )
                for _ in range(600):
                    health = (await client.get("/healthz")).json()
                    if health["status"] == "ok":
                        break
                    await asyncio.sleep(0.1)
                assert health["status"] == "ok" and health["spooled_records"] == 0, (
                    health,
                    collector.log()[-4000:],
                )
            log = collector.log()
    finally:
        if not stack.local.kafka.healthy():
            stack.start_kafka()

    assert sum(statuses.values()) == TOTAL
    records = await read_topic(
        stack.bootstrap, f"{namespace}.events", min_count=TOTAL, timeout=120, settle=3
    )
    ids = Counter(r.json()["id"] for r in records)
    expected = {event_id(SITE, f"s{i % 97}", f"n{i}") for i in range(TOTAL)}
    assert set(ids) == expected, f"missing {len(expected - set(ids))}\n{log[-3000:]}"
    duplicates = {k: n for k, n in ids.items() if n > 1}
    assert not duplicates, f"{len(duplicates)} ids twice\n{log[-3000:]}"
    assert len(records) == TOTAL
