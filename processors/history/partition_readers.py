"""One Kafka consumer per partition, so that some partitions can be left unread for a while.

Used instead of ``pause()``/``resume()``: in kafka-python 3.0.12 a partition paused with
fetched records pending can stay stranded after ``resume()`` (its parked records are only
restored while no other fetch is in line), and never be fetched again.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, TopicPartition

from ingest.kafka_client import Brokers, client_options


class PartitionReaders:
    def __init__(self, bootstrap: Brokers, topic: str, starts: dict[int, int]) -> None:
        self.tps = {p: TopicPartition(topic, p) for p in starts}
        self.consumers: dict[int, KafkaConsumer] = {}
        try:
            for p, offset in starts.items():
                c = KafkaConsumer(
                    **client_options(bootstrap, "kafka-python"),
                    enable_auto_commit=False,
                    isolation_level="read_committed",
                )
                c.assign([self.tps[p]])
                c.seek(self.tps[p], offset)
                self.consumers[p] = c
        except BaseException:
            self.close()
            raise

    def poll(self, p: int, timeout_ms: int, max_records: int) -> list[Any]:
        batch = self.consumers[p].poll(timeout_ms=timeout_ms, max_records=max_records)
        return list(batch.get(self.tps[p], []))

    def position(self, p: int) -> int:
        return int(self.consumers[p].position(self.tps[p]))

    def close(self) -> None:
        for c in self.consumers.values():
            c.close()
