"""Reading a topic back in tests: every record of every partition, from the start."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient


@dataclass
class Record:
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    timestamp_ms: int

    def json(self) -> Any:
        return json.loads(self.value)


async def read_topic(
    bootstrap: str, topic: str, min_count: int = 0, timeout: float = 30.0, settle: float = 1.0
) -> list[Record]:
    """Every record of ``topic`` (all partitions, from the start): waits for ``min_count``
    records, then ``settle`` seconds more so extra (duplicate) records would show up too."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        parts: set[int] | None = None
        while time.monotonic() < deadline:
            parts = consumer.partitions_for_topic(topic) or None
            if parts:
                break
            await consumer._client.force_metadata_update()  # topic may be new
            await asyncio.sleep(0.2)
        if not parts:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[Record] = []
        settle_until: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                out += [Record(m.key, m.value, dict(m.headers or ()), m.timestamp) for m in msgs]
            if len(out) >= min_count:
                settle_until = settle_until or time.monotonic() + settle
                if time.monotonic() >= settle_until:
                    break
        return out
    finally:
        await consumer.stop()


def topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    """A topic's effective configuration (``retention.ms`` and the rest) as strings."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    # {resource type: {name: {key: {config data}}}}
    (by_name,) = res.values()
    return {k: str(v.get("value") if isinstance(v, dict) else v) for k, v in by_name[topic].items()}
