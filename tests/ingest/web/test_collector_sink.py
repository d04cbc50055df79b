"""The sink (ingest/web/sink.py): spooling while Kafka is unreachable, and draining spooled
records of an earlier run into the real broker."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ingest.events import decode_event
from ingest.producer import DLQ_REASON, EventProducer
from ingest.web.sink import DeadLetter, Delivery, Sink, decode_frame, encode_frame
from ingest.web.spool import Spool
from ingest.web.wire import parse_body

from .helpers import SITE, free_port, read_topic


def events(n: int, start: int = 0) -> list[Any]:
    body = (
        "["
        + ",".join(
            f'{{"kind":"pageview","site":"{SITE}","url":"https://acme.com/{i}","session":"s{i % 3}","nonce":"n{i}"}}'
            for i in range(start, start + n)
        )
        + "]"
    )
    return parse_body(body.encode(), 1_763_633_703.123, max_batch=1000)


def make_sink(path: Path, bootstrap: str, namespace: str = "ripple") -> Sink:
    spool = Spool(path, max_bytes=1 << 24, max_age_seconds=3600)
    return Sink(
        EventProducer(bootstrap, namespace, source="web", linger_ms=5), spool, ack_timeout=1.0
    )


def test_frames_round_trip() -> None:
    items = [*events(3), DeadLetter(b"\xff\x00raw", "invalid_json", "detail")]
    assert decode_frame(encode_frame(items)) == items


async def test_unreachable_kafka_spools_and_keeps_records_across_restarts(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    path = tmp_path / "web.spool"
    sink = make_sink(path, dead)
    await sink.start()
    assert await sink.submit(events(5)) is Delivery.SPOOLED
    assert await sink.submit([DeadLetter(b"{", "invalid_json", "truncated")]) is Delivery.SPOOLED
    status = sink.status()
    assert (
        status["status"] == "degraded"
        and status["spooled_records"] == 6
        and status["kafka"] == "unavailable"
    )
    await sink.stop(timeout=1)

    again = make_sink(path, dead)
    await again.start()
    assert again.spooled_items == 6  # counted from the file
    assert await again.submit(events(1, start=5)) is Delivery.SPOOLED
    assert again.spooled_items == 7
    await again.stop(timeout=1)


@pytest.mark.integration
async def test_spool_of_an_earlier_run_is_drained_in_order(
    tmp_path: Path, stack: Any, namespace: str
) -> None:
    stack.create_topics(f"{namespace}.events", f"{namespace}.dlq", partitions=1)
    path = tmp_path / "web.spool"
    offline = make_sink(path, f"127.0.0.1:{free_port()}", namespace)
    await offline.start()
    batches = [events(10, start=i * 10) for i in range(5)]
    for batch in batches:
        await offline.submit(batch)
    await offline.submit([DeadLetter(b"not json", "invalid_json", "malformed")])
    await offline.stop(timeout=1)

    sink = make_sink(path, stack.bootstrap, namespace)
    await sink.start()
    try:
        for _ in range(300):
            if not sink.spooling:
                break
            await asyncio.sleep(0.1)
        assert not sink.spooling and sink.spooled_items == 0 and sink.status()["status"] == "ok"
        # Direct again: a new request is acknowledged by Kafka itself.
        assert await sink.submit(events(1, start=50)) is Delivery.ACKED
    finally:
        await sink.stop()
    assert path.stat().st_size == 0

    records = await read_topic(stack.bootstrap, f"{namespace}.events", min_count=51)
    got = [decode_event(r.value).id for r in records]
    want = [ev.id for batch in [*batches, events(1, start=50)] for ev in batch]
    assert got == want  # one partition: exactly the accepted order, each once
    (dlq,) = await read_topic(stack.bootstrap, f"{namespace}.dlq", min_count=1)
    assert dlq.value == b"not json" and dlq.headers[DLQ_REASON] == b"invalid_json"
