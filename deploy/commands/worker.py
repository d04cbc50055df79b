"""``ripple worker``: one faust worker of the processors (several share the partitions)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ingest.config import ConfigError, load_config
from ingest.kafka_client import kafka_access, verify_access


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "worker",
        help="run a processors worker (faust): matching, windows, results, stream alerts",
        description=(
            "Run one worker of the namespace's processors. Start several (each with its own "
            "--web-port) and they share the partitions; a killed worker's partitions move to "
            "the others, which rebuild their state from the changelog."
        ),
    )
    p.add_argument("--config", help="TOML configuration (default $RIPPLE_CONFIG)")
    p.add_argument("--namespace", help="topic namespace (default: the config's, 'ripple')")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: the config's)")
    p.add_argument(
        "--web-port", type=int, help="port of /metrics and /healthz (default from config)"
    )
    p.add_argument(
        "--state-dir", help="where RocksDB state lives (default: the config's stack.state_dir)"
    )
    p.add_argument("--loglevel", default="info", help="faust log level (default info)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import faust  # heavy: only when the command runs

    from processors.job.app import create_app
    from processors.job.topology import ensure_topics

    try:
        config = load_config(args.config)
        bootstrap = kafka_access(config.kafka, args.bootstrap)
        verify_access(bootstrap)
    except ConfigError as exc:
        print(f"ripple worker: {exc}", file=sys.stderr)
        return 2
    ns = args.namespace or config.kafka.namespace
    port = args.web_port or config.stack.worker_web_port
    state = Path(args.state_dir or config.stack.state_dir)
    datadir = state / "faust" / ns / str(port)
    datadir.mkdir(parents=True, exist_ok=True)
    ensure_topics(bootstrap, ns, config.kafka.partitions)
    app, _, _ = create_app(
        config, namespace=ns, bootstrap=bootstrap, datadir=datadir, web_port=port
    )
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0
