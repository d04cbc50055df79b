"""What every agent of one namespace shares: the compiled configuration, topic names and
where each input partition's agent stands."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.kafka_client import Brokers
from ingest.topics import Topics
from processors.core.compiled import Compiled


@dataclass
class Context(Compiled):
    namespace: str = ""
    bootstrap: Brokers = ""
    partitions: int = 6
    topics: Topics = field(init=False)
    # (topic, partition) -> the next input offset its agent expects (processors.job.watchdog)
    applied: dict[tuple[str, int], int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.topics = Topics(self.namespace)
