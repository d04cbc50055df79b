"""Shared fixtures. ``stack``: one real local stack per test session (Apache Kafka in KRaft
mode, Prometheus, Alertmanager) on free loopback ports in a temporary state dir.

Importing this file is cheap: the stack code is imported when a test first asks for it.
Tests that use ``stack`` are marked ``integration`` automatically.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from deploy.stack.local import LocalStack


def write_stack_config(state_dir: Path, extra: str = "", workers: int = 1) -> Path:
    """A ripple TOML config whose stack uses free ports and ``state_dir``.

    ``extra`` is appended TOML (e.g. ``[[sites]]`` tables)."""
    from deploy.stack.ports import free_port

    kafka_port = free_port()
    text = f"""\
# Written by tests/conftest.py for one test session.
[kafka]
bootstrap = "127.0.0.1:{kafka_port}"
partitions = 3

[stack]
state_dir = "{state_dir}"
workers = {workers}
kafka_port = {kafka_port}
kafka_controller_port = {free_port()}
prometheus_port = {free_port()}
alertmanager_port = {free_port()}
webhook_port = {free_port()}
worker_web_port = {free_port()}
collector_port = {(collector := free_port())}

[collector]
port = {collector}
{extra}"""
    path = state_dir / "ripple.toml"
    state_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@dataclass
class StackHandle:
    """What tests need from the running stack."""

    local: LocalStack
    config_path: Path

    @property
    def bootstrap(self) -> str:
        return self.local.bootstrap

    @property
    def prometheus_url(self) -> str:
        return self.local.prometheus_url

    @property
    def alertmanager_url(self) -> str:
        return self.local.alertmanager_url

    @property
    def state_dir(self) -> Path:
        return self.local.paths.root

    def stop_kafka(self) -> None:
        """Stop the broker cleanly (SIGTERM); its data stays."""
        self.local.kafka.stop()

    def start_kafka(self) -> None:
        """Start the broker again on the same data dir and wait until it answers metadata."""
        self.local.kafka.start()

    def create_topics(
        self, *names: str, partitions: int = 1, config: Mapping[str, str] | None = None
    ) -> list[str]:
        from deploy.stack.topics import TopicSpec, ensure_topics

        ensure_topics(self.bootstrap, [TopicSpec(n, partitions, dict(config or {})) for n in names])
        return list(names)

    def unique_topic(self, prefix: str = "test", **kwargs: Any) -> str:
        """Create and return a topic with a fresh name."""
        name = f"{prefix}.{uuid.uuid4().hex[:10]}"
        self.create_topics(name, **kwargs)
        return name


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    from deploy.stack.kafka import KafkaError
    from deploy.stack.local import LocalStack
    from deploy.stack.supervisor import ServiceError
    from ingest.config import load_config

    # A free port can be taken by another program before our service binds it (other test
    # sessions run on this machine): then try again on fresh ports.
    for attempt in range(3):
        state_dir = tmp_path_factory.mktemp("ripple-stack")
        config_path = write_stack_config(state_dir)
        local = LocalStack(load_config(config_path))
        try:
            local.up(services=False)
            break
        except (KafkaError, ServiceError):
            local.down()
            if attempt == 2:
                raise
    try:
        yield StackHandle(local, config_path)
    finally:
        local.down()


@pytest.fixture
def make_stack_config() -> Callable[..., Path]:
    """``make_stack_config(state_dir, extra="", workers=1)``: write a config on free ports
    (for tests that run their own stack, e.g. through ``ripple up``)."""
    return write_stack_config


@pytest.fixture
def namespace() -> str:
    """A fresh topic namespace per test, so tests never see each other's records."""
    return f"t{uuid.uuid4().hex[:10]}"


def pytest_configure(config: pytest.Config) -> None:
    # kafka-python 3.0 loads its protocol schemas with a deprecated importlib API, per request.
    for message in ("read_text is deprecated", "open_text is deprecated"):
        config.addinivalue_line("filterwarnings", f"ignore:{message}:DeprecationWarning")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
