"""``ripple ingest <source>``: run one ingestor (a platform source or the website collector)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import threading

from ingest.config import ConfigError, load_config
from ingest.kafka_client import KafkaAccess, kafka_access

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


TOPICS_WAIT_SECONDS = 15.0


def _with_topics(run):  # type: ignore[no-untyped-def]
    """Make the namespace's topics first, as ``ripple up`` does: a topic the broker creates on
    first produce gets its default time retention, and events carry their (possibly years
    old) ``ts`` as the Kafka timestamp, so the broker would delete a history backfill.

    Never in the way: with the broker away (or no admin rights) the source starts anyway
    after ``TOPICS_WAIT_SECONDS`` (its producer waits for Kafka in its own way), and the
    website collector skips it (it must answer, and spool, while Kafka is down; its
    events are dated now)."""

    def wrapped(args: argparse.Namespace) -> int:
        if args.source != "web":
            try:
                config = load_config(args.config)
                bootstrap = kafka_access(config.kafka, args.bootstrap)
            except ConfigError as exc:
                print(f"ripple ingest {args.source}: {exc}", file=sys.stderr)
                return 2
            ns = args.namespace or config.kafka.namespace
            _make_topics(bootstrap, ns, config.kafka.partitions)
        return int(run(args))

    return wrapped


def _make_topics(bootstrap: KafkaAccess, namespace: str, partitions: int) -> None:
    from processors.job.topology import ensure_topics

    failed: list[BaseException] = []

    def make() -> None:
        try:
            ensure_topics(bootstrap, namespace, partitions)
        except Exception as exc:  # reported below; the source runs regardless
            failed.append(exc)

    worker = threading.Thread(target=make, name="ripple-topics", daemon=True)
    worker.start()
    worker.join(TOPICS_WAIT_SECONDS)
    if worker.is_alive() or failed:
        why = failed[0] if failed else f"no answer in {TOPICS_WAIT_SECONDS:.0f}s"
        log.warning("could not make the namespace's topics (%s); producing anyway", why)


def _unavailable(name: str, exc: Exception):  # type: ignore[no-untyped-def]
    def run(args: argparse.Namespace) -> int:
        print(f"ripple ingest {name}: this source failed to load: {exc}", file=sys.stderr)
        return 2

    return run
