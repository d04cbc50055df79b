"""What an agent applies for a delivered record, given the next offset it expects."""

from __future__ import annotations

from kafka import KafkaProducer

from processors.job.gapfill import read_range, to_apply


async def test_a_redelivered_record_is_not_applied_again() -> None:
    assert await to_apply("unused:1", "t", 0, expected=5, offset=4, value=b"x", agent="a") == []


async def test_the_expected_record_is_applied_alone() -> None:
    got = await to_apply("unused:1", "t", 0, expected=5, offset=5, value=b"x", agent="a")
    assert got == [(5, b"x")]


async def test_a_gap_is_read_back_from_kafka_first(stack) -> None:  # type: ignore[no-untyped-def]
    topic = stack.unique_topic(partitions=2)
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    for i in range(6):
        producer.send(topic, value=f"r{i}".encode(), partition=1)
    producer.flush()
    producer.close()
    got = await to_apply(stack.bootstrap, topic, 1, expected=2, offset=5, value=b"r5", agent="a")
    assert got == [(2, b"r2"), (3, b"r3"), (4, b"r4"), (5, b"r5")]
    assert await read_range(stack.bootstrap, topic, 1, 0, 2) == [(0, b"r0"), (1, b"r1")]
