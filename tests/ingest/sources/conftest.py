"""Fixtures for source tests; the helpers themselves live in ingest_helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.cursors import CursorStore
from ingest.topics import Topics


@pytest.fixture
def cursor_store(tmp_path: Path) -> CursorStore:
    return CursorStore(tmp_path / "cursors")


@pytest.fixture(autouse=True)
def namespace_topics(request: pytest.FixtureRequest) -> None:
    """The namespace's topics made as ``ripple up`` makes them before any ingestor runs.

    Fixture posts are years old and carry their ``ts`` as the Kafka timestamp: a topic
    auto-created on first produce gets the broker's 7-day time retention, and its next
    retention check (every 5 minutes) deleted them before the test read them back."""
    if "stack" not in request.fixturenames or "namespace" not in request.fixturenames:
        return
    if request.node.get_closest_marker("cli_makes_topics"):
        return
    from processors.job.topology import EVENTS_TOPIC_CONFIG

    stack = request.getfixturevalue("stack")
    topics = Topics(request.getfixturevalue("namespace"))
    stack.create_topics(topics.events, partitions=3, config=EVENTS_TOPIC_CONFIG)
    stack.create_topics(topics.dlq, partitions=1)
