"""Replay building blocks: read event files, produce them in order, request the final
flush, and collect the namespace's final results.

The replay's ``<ns>.events`` has one partition by default, so the processors see the
file's order exactly and its lateness decisions (the largest event time seen so far) are
the file's; the stateful stage still spreads over the namespace's internal partitions.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import msgspec
import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from ingest.events import InvalidEvent, decode_event, parse_ts
from ingest.kafka_client import Brokers, client_options
from ingest.producer import partition_key
from ingest.topics import Topics
from processors.core.results import Row, identity, sort_key
from processors.history.batch_producer import produce_batched
from processors.history.zstd_frames import zstd_lines
from processors.wire import (
    COMPLETE_KEY,
    COUNTS_KEY_PREFIX,
    FlushRequest,
    WindowCounts,
    decode_result_row,
    decode_window_counts,
    encode_json,
)

log = logging.getLogger(__name__)


def open_lines(path: str | Path) -> Iterator[bytes]:
    """Lines of a JSON Lines file, plain, ``.gz`` or ``.zst`` (many frames); empty lines skipped."""
    p = Path(path)
    raw: IO[bytes]
    if p.suffix in (".zst", ".zstd"):
        # Frame by frame: archive files are many frames, and one cut short is tolerated.
        with p.open("rb") as fh:
            for line in zstd_lines(fh, str(p)):
                line = line.rstrip(b"\r")
                if line:
                    yield line
        return
    # Both are closed by the with below.
    raw = gzip.open(p, "rb") if p.suffix == ".gz" else p.open("rb")  # type: ignore[assignment]  # noqa: SIM115
    with raw:
        for line in raw:
            line = line.rstrip(b"\r\n")
            if line:
                yield line


def key_and_time(line: bytes) -> tuple[bytes | None, int | None]:
    """Partition key and Kafka timestamp of a line; invalid lines get neither."""
    try:
        ev = decode_event(line)
    except InvalidEvent:
        return None, None
    return partition_key(ev), int(parse_ts(ev.ts) * 1000)


def _keyed(lines: Iterable[bytes]) -> Iterator[tuple[bytes | None, bytes, int | None]]:
    for line in lines:
        key, ts = key_and_time(line)
        yield key, line, ts


def produce_lines(
    bootstrap: Brokers,
    namespace: str,
    lines: Iterable[bytes],
    *,
    pace: Callable[[int | None], None] | None = None,
    progress: Callable[[int], None] | None = None,
    live: bool = False,
) -> int:
    """Produce every line (invalid ones too: the DLQ must see them), in order; returns count.

    Unpaced input that never waits (a file, a topic's range) goes out in whole record
    batches (``batch_producer``); paced or ``live`` input (the demo's feed, which sleeps
    between events) record by record, so each event leaves as soon as it is read."""
    topic = Topics(namespace).events
    if pace is None and not live:
        return produce_batched(bootstrap, topic, _keyed(lines), progress)
    producer = KafkaProducer(
        **client_options(bootstrap, "kafka-python"),
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        batch_size=512 * 1024,
        compression_type="lz4",
        max_in_flight_requests_per_connection=5,
    )
    n = reported = 0
    next_report = time.monotonic() + 0.5
    try:
        for line in lines:
            key, ts = key_and_time(line)
            if pace is not None:
                pace(ts)
            producer.send(topic, value=line, key=key, timestamp_ms=ts)
            n += 1
            # Every 1000 events, or twice a second when paced slowly.
            if progress is not None and (n - reported >= 1000 or time.monotonic() >= next_report):
                progress(n - reported)
                reported, next_report = n, time.monotonic() + 0.5
        producer.flush()
        if progress is not None and n > reported:
            progress(n - reported)
    finally:
        producer.close()
    return n


def request_flush(bootstrap: Brokers, namespace: str) -> dict[int, int]:
    """Tell the gate to close every window once it has read up to today's end offsets."""
    t = Topics(namespace)
    consumer = KafkaConsumer(**client_options(bootstrap, "kafka-python"))
    try:
        parts = consumer.partitions_for_topic(t.events) or set()
        ends = consumer.end_offsets([TopicPartition(t.events, p) for p in parts])
    finally:
        consumer.close()
    flush_at = {tp.partition: off for tp, off in ends.items()}
    producer = KafkaProducer(**client_options(bootstrap, "kafka-python"), acks="all")
    try:
        producer.send(
            t.internal("control"),
            encode_json(FlushRequest(flush_at)),
        )
        producer.flush()
    finally:
        producer.close()
    return flush_at


def collect_results(
    bootstrap: Brokers,
    namespace: str,
    timeout: float,
    alive: Callable[[], bool] = lambda: True,
    on_row: Callable[[int], None] | None = None,
    stop_at_end: bool = False,
    counts: dict[int, WindowCounts] | None = None,
) -> list[Row]:
    """Read ``<ns>.results`` until the completion record; last revision of each row, sorted.

    ``stop_at_end``: also stop once the topic is read up to its end offsets (a live
    namespace never writes the completion record; its open windows are not in it yet).
    ``counts``: filled with the final 1m windows' counter values (window start -> record),
    which ride beside the rows; they are never rows."""
    consumer = KafkaConsumer(
        Topics(namespace).results,
        **client_options(bootstrap, "kafka-python"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        consumer_timeout_ms=1000,
    )
    rows: dict[Any, Row] = {}
    deadline = time.monotonic() + timeout
    try:
        while True:
            for rec in consumer:
                if rec.key == COMPLETE_KEY:
                    return sorted(rows.values(), key=sort_key)
                if rec.key is not None and rec.key.startswith(COUNTS_KEY_PREFIX):
                    if counts is not None:
                        record = decode_window_counts(rec.value)
                        counts[record.start] = record
                    continue
                try:
                    row = decode_result_row(rec.value)
                except msgspec.ValidationError as exc:  # not from a rollup: say where
                    raise ValueError(
                        f"{rec.topic}@{rec.offset}: not a results row: {exc}"
                    ) from None
                rows[identity(row)] = row
                if on_row is not None:
                    on_row(len(rows))
            if stop_at_end and _at_end(consumer):
                return sorted(rows.values(), key=sort_key)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"results incomplete after {timeout:.0f}s ({len(rows)} rows so far)"
                )
            if not alive():
                raise RuntimeError("every worker exited before the results were complete")
    finally:
        consumer.close()


def _at_end(consumer: KafkaConsumer) -> bool:
    """Every assigned partition read up to its (last stable) end offset."""
    parts = consumer.assignment()
    if not parts:
        return False
    ends = consumer.end_offsets(list(parts))
    return all(consumer.position(tp) >= ends[tp] for tp in parts)


def write_results(rows: list[Row], out: str | Path) -> None:
    with Path(out).open("wb") as fh:
        for row in rows:
            fh.write(orjson.dumps(row) + b"\n")
