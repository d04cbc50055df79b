"""Creating topics (idempotently) with kafka-python's admin client."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from deploy.stack.kafka import quiet_client
from ingest.kafka_client import Brokers, client_options, new_topic


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 1
    config: Mapping[str, str] = field(default_factory=dict)  # e.g. {"cleanup.policy": "compact"}


def ensure_topics(
    bootstrap: Brokers, topics: Iterable[TopicSpec], timeout: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet and wait until the broker lists them all.
    Replication as ``bootstrap`` says (a plain address: one replica).

    Returns the names this call created."""
    from kafka import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError

    wanted = list(topics)
    names = {t.name for t in wanted}
    created: list[str] = []
    with quiet_client():
        admin = KafkaAdminClient(
            **client_options(bootstrap, "kafka-python"), client_id="ripple-topics"
        )
        try:
            existing = set(admin.list_topics())
            for t in wanted:
                if t.name in existing:
                    continue
                try:
                    admin.create_topics(
                        [new_topic(bootstrap, t.name, t.partitions, dict(t.config))],
                        timeout_ms=int(timeout * 1000),
                    )
                    created.append(t.name)
                except TopicAlreadyExistsError:
                    pass  # another process (or auto-creation) won the race
            deadline = time.monotonic() + timeout
            while not names <= set(admin.list_topics()):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"topics not visible after {timeout:.0f}s: {sorted(names)}")
                time.sleep(0.1)
        finally:
            admin.close()
    return created
