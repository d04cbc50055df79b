"""Metric definitions: name, type, help and labels, declared once.

``processors.catalogue`` extends this catalogue and the dashboards are generated from the
whole of it, so names cannot drift. Labels are bounded (source, reason, brand, platform,
site, network, ...): never ids, URLs or free text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

MetricType = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class MetricDef:
    name: str  # full exposition name; counters end in _total
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()

    def create(self, registry: CollectorRegistry = REGISTRY) -> Counter | Gauge | Histogram:
        if self.type == "counter":
            # prometheus_client appends _total itself.
            return Counter(
                self.name.removesuffix("_total"), self.help, self.labels, registry=registry
            )
        if self.type == "gauge":
            return Gauge(self.name, self.help, self.labels, registry=registry)
        return Histogram(self.name, self.help, self.labels, registry=registry)


INGEST_EVENTS = MetricDef(
    "ripple_ingest_events_total", "counter",
    "Canonical events an ingestor produced and Kafka acknowledged.", ("source", "kind"),
)  # fmt: skip
INGEST_DEAD_LETTERS = MetricDef(
    "ripple_ingest_dead_letters_total", "counter",
    "Invalid inputs an ingestor sent to the dead-letter topic.", ("source", "reason"),
)  # fmt: skip
INGEST_RECONNECTS = MetricDef(
    "ripple_ingest_reconnects_total", "counter",
    "Connections an ingestor re-opened after an error or a drop.", ("source",),
)  # fmt: skip
INGEST_LAST_EVENT = MetricDef(
    "ripple_ingest_last_event_timestamp_seconds", "gauge",
    "Event time of the newest event an ingestor produced.", ("source",),
)  # fmt: skip
INGEST_LAG = MetricDef(
    "ripple_ingest_lag_seconds", "gauge",
    "How far an ingestor runs behind its platform (now minus the newest event time).", ("source",),
)  # fmt: skip
INGEST_RATE_LIMITED = MetricDef(
    "ripple_ingest_rate_limited_total", "counter",
    "Times an ingestor waited on a platform's rate limit (429, Retry-After, X-Ratelimit-*).", ("source",),
)  # fmt: skip
INGEST_PRODUCE_ERRORS = MetricDef(
    "ripple_ingest_produce_retries_total", "counter",
    "Produce attempts retried because Kafka did not acknowledge them.", ("source",),
)  # fmt: skip
COLLECTOR_REQUESTS = MetricDef(
    "ripple_collector_requests_total", "counter",
    "HTTP requests the website collector answered, by status code class.", ("site", "status"),
)  # fmt: skip
COLLECTOR_SPOOLED = MetricDef(
    "ripple_collector_spooled_events", "gauge",
    "Events held in the collector's local spool while Kafka is unavailable.", (),
)  # fmt: skip
INGEST_PAUSED = MetricDef(
    "ripple_ingest_paused", "gauge",
    "1 while an ingestor is paused because Kafka has not acknowledged for too long, else 0.", ("source",),
)  # fmt: skip
COLLECTOR_BOT_REQUESTS = MetricDef(
    "ripple_collector_bot_requests_total", "counter",
    "Requests the website collector dropped as bot traffic (crawler User-Agent or an automated browser).", ("site",),
)  # fmt: skip

INGEST_METRICS: tuple[MetricDef, ...] = (
    INGEST_EVENTS, INGEST_DEAD_LETTERS, INGEST_RECONNECTS, INGEST_LAST_EVENT, INGEST_LAG,
    INGEST_RATE_LIMITED, INGEST_PRODUCE_ERRORS, COLLECTOR_REQUESTS, COLLECTOR_SPOOLED,
    INGEST_PAUSED, COLLECTOR_BOT_REQUESTS,
)  # fmt: skip
