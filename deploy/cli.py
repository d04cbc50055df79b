"""``ripple``: the one command line that composes ingest, processors, dashboards and the stack."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# One module per command family; each adds its own subcommands and --help text.
COMMAND_MODULES = (
    "deploy.commands.stack",  # up, status, down
    "deploy.commands.ingest",  # ingest <source>
    "deploy.commands.worker",  # worker
    "deploy.commands.replay",  # replay
    "deploy.commands.backtest",  # backtest
    "deploy.commands.archive",  # archive
    "deploy.commands.dashboards",  # dashboards generate|check|push
    "deploy.commands.demo",  # demo
    "deploy.commands.report",  # report
)

DESCRIPTION = """\
Ripple watches social media marketing (mentions, reach, engagement, share of voice) and
social media optimization (share clicks, social referrals, conversions) live, on Kafka.

Typical use:
  ripple up                         start Kafka, Prometheus, Alertmanager and the pipeline
  ripple status                     show each component's health
  ripple demo                       play a generated history into the live pipeline and watch it
  ripple replay --input h.jsonl --namespace test --out results.jsonl
  ripple down [--purge]             stop everything (and with --purge, delete the data)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ripple",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # the Kafka clients narrate every connection at INFO
        for noisy in ("kafka", "aiokafka"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
