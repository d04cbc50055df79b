"""``ripple archive``: keep ``<ns>.events`` as daily zstd JSON Lines files for later replays."""

from __future__ import annotations

import argparse
import signal
import sys
import time

from ingest.config import ConfigError, load_config
from ingest.kafka_client import kafka_access, verify_access

DESCRIPTION = """\
Consume <NS>.events (consumer group <NS>.archive) and append every record verbatim, one JSON
line each, to DIR/<NS>/YYYY-MM-DD.jsonl.zst, the day being the record's event time (UTC).
Every flush appends complete zstd frames and fsyncs them before the offsets are recorded, so
an interrupted file stays readable and a restart goes on exactly where the last flush ended
(no record skipped, none written twice). The files are inputs of `ripple replay --input`.

By default it stops once it has caught up with the end offsets it found at start
(--until-end); --follow keeps consuming until SIGTERM or Ctrl-C (then flushes and exits).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "archive",
        help="archive <ns>.events to daily zstd JSON Lines files",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="TOML configuration file (default $RIPPLE_CONFIG)")
    p.add_argument("--namespace", help="namespace to archive (default: the config's)")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: the config's)")
    p.add_argument("--dir", required=True, help="archive root; files go to DIR/<namespace>/")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--follow", action="store_true", help="keep consuming until stopped")
    mode.add_argument(
        "--until-end", action="store_true", help="stop at the current end offsets (default)"
    )
    p.add_argument(
        "--flush-seconds", type=float, default=5.0, help="longest time between flushes (5)"
    )
    p.add_argument(
        "--flush-records", type=int, default=50_000, help="most records per flush (50000)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from processors.history.archive import Archiver
    from processors.history.archive_state import ArchiveError

    try:
        config = load_config(args.config)
        brokers = kafka_access(config.kafka, args.bootstrap)
        verify_access(brokers)
    except ConfigError as exc:
        print(f"ripple archive: {exc}", file=sys.stderr)
        return 2
    namespace = args.namespace or config.kafka.namespace
    archiver = Archiver(
        brokers,
        namespace,
        args.dir,
        flush_records=args.flush_records,
        flush_seconds=args.flush_seconds,
    )
    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True  # the loop flushes what it holds, then returns

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    started = time.monotonic()
    try:
        stats = archiver.run(follow=args.follow, stop=lambda: stopping)
    except ArchiveError as exc:
        print(f"ripple archive: {exc}", file=sys.stderr)
        return 1
    took = time.monotonic() - started
    files = ", ".join(sorted(stats.files)) or "none"
    print(
        f"archived {stats.records} records of {namespace}.events into {archiver.dir} "
        f"({stats.frames} frames, {stats.bytes} bytes, {took:.1f}s; files: {files})"
    )
    if stats.skipped_empty or stats.recompacted:
        print(
            f"  {stats.skipped_empty} empty records skipped, "
            f"{stats.recompacted} multi-line records written on one line"
        )
    return 0
