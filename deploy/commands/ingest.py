"""``ripple ingest <source>``: run one ingestor (a platform source or the website collector)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ingest.config import ConfigError, load_config
from ingest.kafka_client import kafka_access

log = logging.getLogger(__name__)

# source name -> module; each module exposes add_arguments(parser) and run(args) -> int.
SOURCES = {
    "web": "ingest.web.server",
    "bluesky": "ingest.sources.bluesky",
    "mastodon": "ingest.sources.mastodon",
    "reddit": "ingest.sources.reddit",
    "hackernews": "ingest.sources.hackernews",
    "x": "ingest.sources.x",
    "rss": "ingest.sources.rss",
}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "ingest",
        help="run one ingestor: a social platform source or the website collector",
        description="Stream one source into <namespace>.events. Sources: " + ", ".join(SOURCES),
    )
    inner = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    for name, module in SOURCES.items():
        try:
            mod = importlib.import_module(module)
        except Exception as exc:  # one broken source must not take the whole CLI down
            p = inner.add_parser(name, help=f"(unavailable: {exc.__class__.__name__})")
            p.set_defaults(func=_unavailable(name, exc))
            continue
        p = inner.add_parser(name, help=(mod.__doc__ or "").strip().splitlines()[0])
        p.add_argument("--config", help="TOML configuration file (default $RIPPLE_CONFIG)")
        p.add_argument("--bootstrap", help="Kafka bootstrap servers (overrides the config)")
        p.add_argument("--namespace", help="topic namespace (overrides the config)")
        mod.add_arguments(p)
        p.set_defaults(func=_with_topics(mod.run))


def _with_topics(run):  # type: ignore[no-untyped-def]
    """Make the namespace's topics first, as ``ripple up`` does: a topic the broker creates on
    first produce gets its default time retention, and events carry their (possibly years
    old) ``ts`` as the Kafka timestamp, so the broker would delete a history backfill."""

    def wrapped(args: argparse.Namespace) -> int:
        from processors.topology import ensure_topics

        try:
            config = load_config(args.config)
            bootstrap = kafka_access(config.kafka, args.bootstrap)
            ensure_topics(
                bootstrap, args.namespace or config.kafka.namespace, config.kafka.partitions
            )
        except ConfigError as exc:
            print(f"ripple ingest {args.source}: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:  # no admin rights, broker away: the source still runs
            log.warning("could not make the namespace's topics (%s); producing anyway", exc)
        return int(run(args))

    return wrapped


def _unavailable(name: str, exc: Exception):  # type: ignore[no-untyped-def]
    def run(args: argparse.Namespace) -> int:
        print(f"ripple ingest {name}: this source failed to load: {exc}", file=sys.stderr)
        return 2

    return run
