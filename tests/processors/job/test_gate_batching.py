"""The gate gathers a batch: a trickle of records becomes one batch per ``LINGER``, not one
per fetch (tiny batches saturated the agents at live rates); a backlog goes at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import TopicPartition

from processors.job.gate import LINGER, Gate

TP = TopicPartition("ns.events", 0)


class Trickle:
    """getmany answering ``per_fetch`` records at a time, every ``every`` seconds."""

    def __init__(self, per_fetch: int, every: float) -> None:
        self.per_fetch, self.every, self.calls, self.next = per_fetch, every, 0, 0

    async def getmany(self, timeout_ms: int = 0, max_records: int = 0) -> dict[Any, list[int]]:
        self.calls += 1
        await asyncio.sleep(min(self.every, timeout_ms / 1000))
        n = min(self.per_fetch, max_records)
        out = list(range(self.next, self.next + n))
        self.next += n
        return {TP: out}


def gate(batch_records: int) -> Gate:
    return Gate("127.0.0.1:9", "ns", 1, 600.0, batch_records=batch_records, report=lambda r: None)


def test_a_trickle_is_gathered_for_the_linger() -> None:
    consumer = Trickle(per_fetch=3, every=0.005)
    started = time.monotonic()
    batch = asyncio.run(gate(5000)._gather(consumer))  # type: ignore[arg-type]
    took = time.monotonic() - started
    assert LINGER * 0.9 <= took < LINGER + 0.1
    assert batch[TP] == list(range(len(batch[TP]))) and len(batch[TP]) > 3 * 5


def test_a_backlog_batch_goes_at_once() -> None:
    # a first fetch of a tenth of a batch or more is a backlog: no waiting to fill it
    consumer = Trickle(per_fetch=100, every=0.001)
    batch = asyncio.run(gate(1000)._gather(consumer))  # type: ignore[arg-type]
    assert consumer.calls == 1 and len(batch[TP]) == 100


def test_gathering_stops_at_batch_records() -> None:
    consumer = Trickle(per_fetch=40, every=0.001)
    batch = asyncio.run(gate(1000)._gather(consumer))  # type: ignore[arg-type]
    assert len(batch[TP]) == 1000  # 40 at a time, the last fetch asked for what was left
