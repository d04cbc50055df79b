"""What ``ripple replay`` reads: event files, or a time range of a namespace's events topic."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.config import Config
from ingest.kafka_client import Brokers
from processors.history.replay import open_lines
from processors.history.replay_kafka import kafka_lines, parse_time, plan


class UsageError(ValueError):
    """The arguments do not make a replay (exit status 2)."""


@dataclass
class ReplayInput:
    lines: Iterator[bytes]
    total: int | None  # events to expect (for the progress bar's ETA); an upper bound
    label: str


def from_files(paths: list[str]) -> ReplayInput:
    for f in paths:
        if not Path(f).is_file():
            raise UsageError(f"input not found: {f}")
    # One quick pass to count: reading is far faster than producing, and it gives the ETA.
    total = sum(1 for f in paths for _ in open_lines(f))
    lines = (line for f in paths for line in open_lines(f))
    return ReplayInput(lines, total, ", ".join(paths))


def from_kafka(
    bootstrap: Brokers, source: str, since: float, until: float, slack: float
) -> ReplayInput:
    try:
        spans = plan(bootstrap, source, since, until, slack)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    total = sum(s.stop - s.start for s in spans)
    return ReplayInput(kafka_lines(bootstrap, spans, since, until), total, f"{source}.events")


def resolve(args: argparse.Namespace, config: Config, bootstrap: Brokers) -> ReplayInput:
    """The replay's input from the command line; UsageError when it does not fit together."""
    kafka_only = {"--since": args.since, "--until": args.until,
                  "--source-namespace": args.source_namespace, "--slack": args.slack}  # fmt: skip
    if not args.from_kafka:
        given = [k for k, v in kafka_only.items() if v is not None]
        if given:
            raise UsageError(f"{', '.join(given)} only go with --from-kafka")
        return from_files(args.input)
    if args.since is None or args.until is None:
        raise UsageError("--from-kafka needs --since T and --until T")
    since, until = parse_time(args.since), parse_time(args.until)
    if until <= since:
        raise UsageError(f"--until ({args.until}) must be after --since ({args.since})")
    source = args.source_namespace or config.kafka.namespace
    if source == args.namespace:
        raise UsageError(
            f"--namespace {args.namespace!r} is the source: the replay resets its namespace"
        )
    slack = config.processing.allowed_lateness_seconds if args.slack is None else args.slack
    return from_kafka(bootstrap, source, since, until, slack)
