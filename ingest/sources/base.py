"""The one small interface every platform source implements.

A source is an async iterator of ``Batch``es: canonical events, the raw payloads it could
not turn into events (for the dead-letter topic), and the cursor that is safe to resume
from once everything in and before this batch is in Kafka. ``ingest.runner`` produces each
batch, waits for Kafka's acknowledgement, and only then checkpoints the cursor.

Sources own their connection: they reconnect with ``ingest.backoff.Backoff``, wait on rate
limits, and count both through ``SourceMetrics``; the runner counts events out and lag.
"""

from __future__ import annotations

import abc
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from ingest.config import Config, ConfigError
from ingest.events import Event
from ingest.matching_filter import TrackedTerms
from ingest.metricdefs import INGEST_RATE_LIMITED, INGEST_RECONNECTS
from ingest.telemetry import counter


@dataclass
class Rejected:
    """A platform payload that could not become a canonical event."""

    raw: bytes
    reason: str  # bounded label value, e.g. "invalid_json", "missing_field"
    detail: str


@dataclass
class Batch:
    events: list[Event] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    cursor: Any = None  # JSON-serialisable; None means "no change"


class SourceMetrics:
    """The per-source counters a source itself drives (reconnects, rate-limit waits)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.reconnects = 0
        self.rate_limited_waits = 0

    def reconnect(self) -> None:
        self.reconnects += 1
        counter(INGEST_RECONNECTS).labels(self.source).inc()

    def rate_limited(self) -> None:
        self.rate_limited_waits += 1
        counter(INGEST_RATE_LIMITED).labels(self.source).inc()


class RecentIds:
    """A bounded set of recently emitted ids, to drop repeats after a rewind or a redelivery."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, key: str) -> bool:
        """True if ``key`` was added before; otherwise remember it and return False."""
        if key in self._ids:
            return True
        self._ids[key] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return False

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def __len__(self) -> int:
        return len(self._ids)


T = TypeVar("T")


def load_settings(struct_type: type[T], source: str, settings: dict[str, Any]) -> T:
    """Validate a ``[sources.<name>]`` table into the source's settings Struct.

    ``enabled`` is the supervisor's (``ripple up`` runs enabled sources), not the source's."""
    own = {k: v for k, v in settings.items() if k != "enabled"}
    try:
        return msgspec.convert(own, struct_type, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"sources.{source}: {exc}") from None


class Source(abc.ABC):
    """One platform. Subclasses set ``name`` and implement ``batches``."""

    name: str = ""

    def __init__(self, config: Config, settings: dict[str, Any], cursor: Any = None) -> None:
        self.config = config
        self.settings = settings
        self.cursor = cursor  # last durable cursor, or None for "from now"
        self.metrics = SourceMetrics(self.name)
        self.tracked = TrackedTerms.from_config(config)

    @abc.abstractmethod
    def batches(self) -> AsyncIterator[Batch]:
        """Yield batches forever (or until the source is exhausted)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most sources need none
        """Release connections; called by the runner when it stops."""
