"""Produce a replay's records at full speed: record batches built per partition, in C.

kafka-python's ``send`` costs about 50 µs of Python per record (futures, accumulator,
partitioner, varints), which capped ``ripple replay --speed max`` near 15,000 events/s,
below what one worker processes. aiokafka's batch API appends a record to a
``BatchBuilder`` in its C extension and hands whole batches to the sender. Partitions are
the Java client's (murmur2 of the key), as kafka-python's; a record without a key (an
invalid line, bound for the dead-letter topic) goes to partition 0, deterministically.

Per partition the batches are sent in order, and with idempotence a retry cannot reorder
them. Only for input that never waits (files, a range of a topic): a record sits in its
builder until the builder fills or the input ends, so a live feed uses kafka-python's
per-record path (``processors.history.replay.produce_lines``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from ingest.kafka_client import Brokers, client_options

Record = tuple[bytes | None, bytes, int | None]  # (key, value, timestamp ms)
BATCH_BYTES = 1024 * 1024


def partition_of(key: bytes | None, partitions: int) -> int:
    """The Java client's default partition of a key (kafka-python's too)."""
    if key is None:
        return 0
    return (murmur2(key) & 0x7FFFFFFF) % partitions


async def _produce(
    bootstrap: Brokers,
    topic: str,
    records: Iterable[Record],
    progress: Callable[[int], None] | None,
) -> int:
    producer = AIOKafkaProducer(
        **client_options(bootstrap, "aiokafka"),
        acks="all",
        enable_idempotence=True,
        compression_type="lz4",
        max_batch_size=BATCH_BYTES,
        max_request_size=4 * BATCH_BYTES,
    )
    await producer.start()
    try:
        count = len(await producer.partitions_for(topic))
        builders = [producer.create_batch() for _ in range(count)]
        sent: list[asyncio.Future[object]] = []  # one pending batch per partition at most
        n = reported = 0
        for key, value, ts in records:
            p = partition_of(key, count)
            if builders[p].append(key=key, value=value, timestamp=ts) is None:  # full
                sent.append(await producer.send_batch(builders[p], topic, partition=p))
                builders[p] = producer.create_batch()
                if builders[p].append(key=key, value=value, timestamp=ts) is None:
                    raise ValueError(f"a record of {len(value)} bytes exceeds a batch")
                for f in [f for f in sent if f.done()]:
                    f.result()  # a refused batch raises here, not only at the end
                sent = [f for f in sent if not f.done()]
            n += 1
            if progress is not None and n - reported >= 10_000:
                progress(n - reported)
                reported = n
        for p, b in enumerate(builders):
            if b.record_count():
                sent.append(await producer.send_batch(b, topic, partition=p))
        await asyncio.gather(*sent)  # raises what the broker refused
        if progress is not None and n > reported:
            progress(n - reported)
        return n
    finally:
        await producer.stop()


def produce_batched(
    bootstrap: Brokers,
    topic: str,
    records: Iterable[Record],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Produce every record, in order per partition; returns how many were acked."""
    return asyncio.run(_produce(bootstrap, topic, records, progress))
