"""A replay namespace's topics keep their records whatever their timestamps.

Records carry their event time as Kafka timestamp, and the broker deletes by timestamp
(``log.retention.hours``, checked every few minutes, the active segment included): a replay
of history older than the retention could lose its input between producing it and the
processors reading it, and end with an empty results file. A replay namespace is reset by
the next replay anyway, so its topics keep everything.
"""

from __future__ import annotations

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from processors.topology import topic_plan


def keep_history(bootstrap: str, namespace: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ripple-replay")
    try:
        admin.alter_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, name, configs={"retention.ms": "-1"})
                for name in topic_plan(namespace, partitions)
            ]
        )
    finally:
        admin.close()
