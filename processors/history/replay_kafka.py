"""Replay input read from Kafka: a namespace's ``<ns>.events`` between two times.

Each partition is read from the first offset whose timestamp is at or after ``since``
(``offsets_for_times``) up to the first offset at or after ``until`` plus a slack (records
can arrive late, so some timestamped before ``until`` sit after that offset), and only
records with ``since <= timestamp < until`` are kept. The partitions are merged by record
timestamp, each keeping its own order, so the replay sees the stream in event-time order
with its late records still late.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from ingest.kafka_client import Brokers, client_options
from ingest.topics import Topics


def parse_time(text: str) -> float:
    """RFC 3339 (``2025-11-20T08:00:00Z``; no offset means UTC) or unix seconds."""
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ValueError(f"not a time: {text!r}")
        return value
    try:
        dt = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise ValueError(f"not an RFC 3339 time or unix seconds: {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


@dataclass(frozen=True)
class Span:
    """Offsets to read from one partition: [start, stop)."""

    tp: TopicPartition
    start: int
    stop: int


def plan(
    bootstrap: Brokers, namespace: str, since: float, until: float, slack: float
) -> list[Span]:
    """Per partition, the offsets that can hold records timestamped in [since, until)."""
    topic = Topics(namespace).events
    consumer = KafkaConsumer(**client_options(bootstrap, "kafka-python"))
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            raise ValueError(f"topic {topic} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        ends = consumer.end_offsets(tps)
        starts = consumer.offsets_for_times({tp: int(since * 1000) for tp in tps})
        stops = consumer.offsets_for_times({tp: int((until + slack) * 1000) for tp in tps})
    finally:
        consumer.close()
    spans = []
    for tp in tps:
        first = starts.get(tp)
        if first is None:  # nothing at or after ``since`` in this partition
            continue
        last = stops.get(tp)
        spans.append(Span(tp, first.offset, last.offset if last is not None else ends[tp]))
    return [s for s in spans if s.stop > s.start]


def read_span(
    bootstrap: Brokers, span: Span, since_ms: int, until_ms: int, stall: float = 60.0
) -> Iterator[Any]:
    """Records of one partition in offset order, timestamped in [since, until)."""
    consumer = KafkaConsumer(
        **client_options(bootstrap, "kafka-python"),
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=1 << 20,
        fetch_max_bytes=1 << 20,
    )
    try:
        consumer.assign([span.tp])
        consumer.seek(span.tp, span.start)
        progress_at = time.monotonic()
        while consumer.position(span.tp) < span.stop:
            recs = consumer.poll(timeout_ms=1000, max_records=5000).get(span.tp, [])
            if recs:
                progress_at = time.monotonic()
            elif time.monotonic() - progress_at > stall:
                raise TimeoutError(f"{span.tp}: no records for {stall:.0f}s before {span.stop}")
            for rec in recs:
                if rec.offset >= span.stop:
                    return
                if rec.value is not None and since_ms <= rec.timestamp < until_ms:
                    yield rec
    finally:
        consumer.close()


def kafka_lines(
    bootstrap: Brokers, spans: list[Span], since: float, until: float
) -> Iterator[bytes]:
    """The records' values, partitions merged by timestamp."""
    since_ms, until_ms = int(since * 1000), int(until * 1000)
    streams = [read_span(bootstrap, s, since_ms, until_ms) for s in spans]
    for rec in heapq.merge(*streams, key=lambda r: r.timestamp):
        yield rec.value
