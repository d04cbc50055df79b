"""Records an agent has not seen, read straight from Kafka by offset.

Each stateful agent records in its own changelogged table the next input offset it
expects. After a failover faust's committed offset can lie beyond what the previous
owner durably processed (observed when a worker was killed mid-replay: a partition
resumed six records past its item log). An agent that receives offset N while expecting
M < N reads [M, N) here and applies those records first, so its state never skips input;
records below M were applied already and are skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition

from ingest.kafka_client import Brokers, client_options

log = logging.getLogger(__name__)


async def to_apply(
    bootstrap: Brokers, topic: str, partition: int, expected: int, offset: int, value: bytes,
    agent: str,
) -> list[tuple[int, bytes]]:  # fmt: skip
    """The (offset, value) records to apply, in order, for one delivered record: none for a
    redelivery (below ``expected``), the skipped range first after a gap."""
    if offset < expected:
        return []
    missed = []
    if offset > expected:
        missed = await read_range(bootstrap, topic, partition, expected, offset)
        log.warning("%s: resumed at %d, expected %d: applying the %d records between first",
                    agent, offset, expected, len(missed))  # fmt: skip
    return [*missed, (offset, value)]


async def read_range(
    bootstrap: Brokers, topic: str, partition: int, start: int, end: int, timeout: float = 120.0
) -> list[tuple[int, bytes]]:
    """(offset, value) of every record of one partition in [start, end), in order."""
    return [r async for r in iter_range(bootstrap, topic, partition, start, end, timeout)]


async def iter_range(
    bootstrap: Brokers, topic: str, partition: int, start: int, end: int, timeout: float = 120.0
) -> AsyncIterator[tuple[int, bytes]]:
    """``read_range`` as it is read (a partition's whole retained log fits in no list).
    Records deleted before ``start`` (retention, delete-records) are simply not there."""
    consumer = AIOKafkaConsumer(
        **client_options(bootstrap, "aiokafka"),
        enable_auto_commit=False,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        first = (await consumer.beginning_offsets([tp]))[tp]
        consumer.seek(tp, max(start, first))
        deadline = time.monotonic() + timeout
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            if batch:
                deadline = time.monotonic() + timeout  # progress: the clock starts again
            elif time.monotonic() > deadline:
                raise TimeoutError(f"{topic}-{partition}: offsets {start}..{end} not readable")
            for m in batch.get(tp, []):
                if m.offset < end:
                    yield m.offset, m.value or b""
    finally:
        await consumer.stop()
