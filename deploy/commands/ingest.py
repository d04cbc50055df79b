"""``ripple ingest <source>``: run one ingestor (a platform source or the website collector)."""

from __future__ import annotations

import argparse
import importlib
import sys

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
        p.set_defaults(func=mod.run)


def _unavailable(name: str, exc: Exception):  # type: ignore[no-untyped-def]
    def run(args: argparse.Namespace) -> int:
        print(f"ripple ingest {name}: this source failed to load: {exc}", file=sys.stderr)
        return 2

    return run
