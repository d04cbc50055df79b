"""The namespace's topics: created up front with their partition counts."""

from __future__ import annotations

import contextlib
import logging
import time

from kafka.admin import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from ingest.kafka_client import Brokers, client_options, new_topic
from ingest.topics import Topics

log = logging.getLogger(__name__)


# `<ns>.events` records carry their event time as the Kafka timestamp (EVENTS.md), so time
# retention would delete history (a replay of last month, a backfilled post) as soon as its
# segment rolls, before the gate read it. The events topic is retained by size instead.
EVENTS_TOPIC_CONFIG = {"retention.ms": "-1", "retention.bytes": str(8 * 1024**3)}
# A result row's key is its identity (processors.core.results): the topic compacts to each row's
# last revision (a provisional minute replaced by its final row).
RESULTS_TOPIC_CONFIG = {"cleanup.policy": "compact"}
# The gate's batches are resolve's item log (processors.job.resolve): kept until resolve
# deletes the records it no longer needs, never by time (a quiet week must not lose them).
BATCHES_TOPIC_CONFIG = {"retention.ms": "-1"}


def topic_plan(
    namespace: str, partitions: int, events_partitions: int | None = None
) -> dict[str, tuple[int, dict[str, str]]]:
    """The one plan of a namespace's topics: name -> (partitions, topic config). The stack,
    the worker, ingestors and replay all create topics from it (``ensure_topics``).

    Only ``<ns>.events`` and the stage topics are partitioned: dead letters, results and
    alert transitions are low-volume and read whole, in order, by one reader."""
    t = Topics(namespace)
    return {
        t.events: (events_partitions or partitions, EVENTS_TOPIC_CONFIG),
        t.dlq: (1, {}),
        t.results: (1, RESULTS_TOPIC_CONFIG),
        t.alerts: (1, {}),
        t.internal("batches"): (partitions, BATCHES_TOPIC_CONFIG),
        t.internal("partials"): (1, {}),
        t.internal("control"): (1, {}),
    }


def changelog_plan(namespace: str, partitions: int) -> dict[str, int]:
    """faust's changelog topics, made up front: faust creating them itself races its own
    metadata refresh (PartitionsMismatch "changelog has 0 partitions") on a fresh namespace."""
    app_id = f"ripple-{namespace}"
    return {f"{app_id}-itemlog-changelog": partitions, f"{app_id}-rollup-changelog": 1}


def ensure_topics(
    bootstrap: Brokers, namespace: str, partitions: int, events_partitions: int | None = None
) -> None:
    """Create the namespace's topics that do not exist, replicated as ``bootstrap`` says."""
    admin = KafkaAdminClient(
        **client_options(bootstrap, "kafka-python"), client_id="ripple-topology"
    )
    try:
        existing = set(admin.list_topics())
        new = [
            new_topic(bootstrap, name, n, config)
            for name, (n, config) in topic_plan(namespace, partitions, events_partitions).items()
            if name not in existing
        ] + [
            new_topic(bootstrap, name, n, {"cleanup.policy": "compact"})
            for name, n in changelog_plan(namespace, partitions).items()
            if name not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new)
        wanted = {t.name for t in new}
        deadline = time.time() + 30
        while wanted - set(admin.list_topics()) and time.time() < deadline:
            time.sleep(0.1)
    finally:
        admin.close()


def delete_namespace(bootstrap: Brokers, namespace: str) -> None:
    """Delete every topic and consumer group of a namespace (a replay starts clean)."""
    admin = KafkaAdminClient(
        **client_options(bootstrap, "kafka-python"), client_id="ripple-topology"
    )
    try:
        app_id = f"ripple-{namespace}"
        prefixes = (f"{namespace}.", f"{app_id}-")
        doomed = [t for t in admin.list_topics() if t.startswith(prefixes)]
        groups = [
            g["group_id"]
            for g in admin.list_groups()
            if g["group_id"] in (app_id, f"{namespace}.gate")
        ]
        if groups:
            try:
                admin.delete_groups(groups)
            except Exception as exc:  # a group with live members cannot be deleted
                log.warning("could not delete consumer groups %s: %s", groups, exc)
        if doomed:
            with contextlib.suppress(UnknownTopicOrPartitionError):
                admin.delete_topics(doomed)
            deadline = time.time() + 30
            while time.time() < deadline and set(doomed) & set(admin.list_topics()):
                time.sleep(0.2)
    finally:
        admin.close()
