"""The command line every source module shares: ``ripple ingest <source> [options]``.

A source module does ``add_arguments, run = source_cli(MySource)``; ``deploy.commands.ingest``
adds ``--config``, ``--bootstrap`` and ``--namespace`` itself and calls these two.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import Any

from ingest.config import Config, ConfigError, load_config
from ingest.cursors import CursorStore, cursor_dir
from ingest.kafka_client import kafka_access, verify_access
from ingest.producer import EventProducer
from ingest.runner import run_source
from ingest.sources.base import Source

log = logging.getLogger(__name__)


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", help="base URL of the platform endpoint (self-hosted instance, tests)"
    )
    parser.add_argument("--cursor-dir", help="where cursors are kept (default <state_dir>/cursors)")
    parser.add_argument(
        "--from-now", action="store_true", help="ignore the saved cursor and start from now"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one [sources.<name>] setting (repeatable; VALUE parsed as TOML if it can be)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ["RIPPLE_METRICS_PORT"])
        if os.environ.get("RIPPLE_METRICS_PORT")
        else None,
        help="serve Prometheus metrics on this port (default $RIPPLE_METRICS_PORT, which `ripple up` sets)",
    )
    parser.add_argument("--log-level", default="INFO")


def _parse_value(value: str) -> Any:
    import tomllib

    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def source_settings(config: Config, name: str, args: argparse.Namespace) -> dict[str, Any]:
    settings = dict(config.sources.get(name, {}))
    for item in getattr(args, "set", None) or []:
        key, _, value = item.partition("=")
        settings[key.strip()] = _parse_value(value.strip())
    if getattr(args, "url", None):
        settings["url"] = args.url
    return settings


def build(
    factory: type[Source], args: argparse.Namespace
) -> tuple[Config, Source, EventProducer, CursorStore]:
    config = load_config(getattr(args, "config", None))
    if getattr(args, "bootstrap", None):
        config.kafka.bootstrap = args.bootstrap
    if getattr(args, "namespace", None):
        config.kafka.namespace = args.namespace
    name = factory.name
    store = CursorStore(cursor_dir(config, getattr(args, "cursor_dir", None)))
    cursor = None if getattr(args, "from_now", False) else store.load(name)
    source = factory(config, source_settings(config, name, args), cursor)
    brokers = kafka_access(config.kafka)
    verify_access(brokers)  # a refused login fails here, naming the setting
    producer = EventProducer(brokers, config.kafka.namespace, source=name)
    return config, source, producer, store


async def _main(source: Source, producer: EventProducer, store: CursorStore) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with producer:
        await run_source(source, producer, store, stop=stop)


def source_cli(
    factory: type[Source],
) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]:
    """``(add_arguments, run)`` for a source module."""

    def run(args: argparse.Namespace) -> int:
        logging.basicConfig(
            level=getattr(args, "log_level", "INFO"),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        try:
            _, source, producer, store = build(factory, args)
        except (ConfigError, ValueError) as exc:
            print(f"ripple ingest {factory.name}: {exc}")
            return 2
        if getattr(args, "metrics_port", None):
            from prometheus_client import start_http_server

            bind = os.environ.get("RIPPLE_BIND_HOST", "127.0.0.1")  # 0.0.0.0 in containers
            start_http_server(args.metrics_port, addr=bind)
        log.info("%s: starting (cursor %r)", factory.name, source.cursor)
        asyncio.run(_main(source, producer, store))
        return 0

    return add_source_arguments, run
