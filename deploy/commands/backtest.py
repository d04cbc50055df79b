"""``ripple backtest``: when would the alerts of a rule set have fired on this history?

The history is replayed by ``ripple replay`` itself (its parser builds the arguments, its
``run`` does the work), so a backtest is exactly a replay: a fresh non-live namespace,
whose alerts Alertmanager routes to the quiet receiver, and whose results file carries the
stream detector's ``"metric":"alert"`` rows. ``--in-process`` computes the same rows with
the processors' pure core (``processors.harness``) instead. The summary is
``deploy.backtest``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from deploy import backtest as summary
from deploy.commands import replay
from ingest.config import ConfigError, load_config
from ingest.kafka_client import kafka_access, verify_access

HELP = """\
Replay history with the alert rules of --config and print, per alert and label set
(alertname with brand/platform or site/network), when each alert would have fired and
resolved (event time), how long it stayed firing each time and in all, and how many times
it fired in the period. An alert still firing when the history ends says "firing at end"
(its duration runs to the end of the period: the last 1m window of the replay).

The rules are the config's [alerts.<name>] factors, floors and resolve factors (METRICS.md
"Spikes and drops"); tracking rules ([[brands]], [[sites]], ...) apply as in a replay.

History: --input FILE... (JSON Lines, .gz or .zst, e.g. `ripple archive` files, in order)
or --from-kafka --since T --until T (a time range of the live namespace's <NS>.events).

How: by default through Kafka and the processors, as `ripple replay` does (it needs the
stack: `ripple up`), into the namespace --namespace (default <live>-backtest, and
<live>-backtest-b for --compare). That namespace is not the live one, so Alertmanager routes
whatever it posts to its quiet receiver: a backtest never pages anyone. --in-process
computes the same results rows with the processors' pure core in this process (no Kafka,
no workers; much faster, good for tuning a threshold over and over). Both give the same
rows, so the same output; the test suite checks that on the reference dataset.

--compare OTHER.toml replays the same history a second time with OTHER's rules and prints
both side by side: a table (fires, first fire and time firing under A and B; "+" marks an
alert still firing at the end), then each alert's episodes under A and B. OTHER is usually
a copy of --config with a factor or floor changed; its [kafka] section is used for its
replay. --json prints the same as JSON ({"config", "period", "fires", "alerts": [...]}, or
{"a", "b", "table"} with --compare); times are RFC 3339, durations in seconds.

A progress bar (stderr) shows long ranges: the replay's own, or one over the events with
--in-process.

Examples:
  ripple backtest --config ripple.toml --input archive/ripple/2026-11-*.jsonl.zst
  ripple backtest --config ripple.toml --input h.jsonl --compare stricter.toml --in-process
  ripple backtest --config ripple.toml --from-kafka --since 2026-11-20T08:00:00Z \\
      --until 2026-11-20T12:00:00Z --json > alerts.json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backtest",
        help="replay history with a rule set and print when each alert would have fired",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE", help="rules and tracking configuration (default $RIPPLE_CONFIG)")  # fmt: skip
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", action="extend", nargs="+", metavar="FILE",
                        help="events files (.jsonl, .jsonl.gz, .jsonl.zst), in order")  # fmt: skip
    source.add_argument("--from-kafka", action="store_true",
                        help="read <SOURCE>.events between --since and --until instead of files")  # fmt: skip
    p.add_argument("--since", metavar="T", help="--from-kafka: first event time, RFC 3339 or unix seconds")  # fmt: skip
    p.add_argument("--until", metavar="T", help="--from-kafka: end event time (excluded)")
    p.add_argument("--source-namespace", metavar="NS",
                   help="--from-kafka: namespace to read (default: --config's live namespace)")  # fmt: skip
    p.add_argument("--slack", type=float, metavar="SECONDS",
                   help="--from-kafka: read this far past --until for late records "
                        "(default processing.allowed_lateness_seconds)")  # fmt: skip
    p.add_argument("--compare", metavar="OTHER.toml",
                   help="also backtest OTHER's rules on the same history and show both side by side")  # fmt: skip
    p.add_argument("--in-process", action="store_true",
                   help="compute with the processors' pure core in this process (no Kafka, no workers)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--namespace", metavar="NAME",
                   help="replay namespace (default <live>-backtest; --compare's is NAME-b)")  # fmt: skip
    p.add_argument("--results-dir", metavar="DIR",
                   help="keep the results files here (a.jsonl, b.jsonl) for `ripple report`; "
                        "default: a temporary directory")  # fmt: skip
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: the config's)")
    p.add_argument("--workers", type=int, default=1, help="processors workers per replay (default 1)")  # fmt: skip
    p.add_argument("--timeout", type=float, default=1800,
                   help="seconds to wait for a replay's final results (default 1800)")  # fmt: skip
    p.set_defaults(func=run)


def replay_namespace(args: argparse.Namespace, config_path: str | None, namespace: str,
                     out: Path) -> argparse.Namespace:  # fmt: skip
    """The arguments ``ripple replay`` would get: its own parser, so its defaults hold."""
    argv = ["replay", "--namespace", namespace, "--out", str(out), "--timeout", str(args.timeout),
            "--workers", str(args.workers)]  # fmt: skip
    if config_path:
        argv += ["--config", config_path]
    if args.bootstrap:
        argv += ["--bootstrap", args.bootstrap]
    if args.from_kafka:
        argv.append("--from-kafka")
        for flag, value in (("--since", args.since), ("--until", args.until),
                            ("--source-namespace", args.source_namespace), ("--slack", args.slack)):  # fmt: skip
            if value is not None:
                argv += [flag, str(value)]
    else:
        for f in args.input:
            argv += ["--input", f]
    parser = argparse.ArgumentParser(prog="ripple")
    replay.register(parser.add_subparsers())
    return parser.parse_args(argv)


def _read_rows(path: Path) -> list[dict[str, Any]]:
    from processors.history.replay import open_lines

    return [orjson.loads(line) for line in open_lines(path)]


def _through_kafka(replay_args: argparse.Namespace) -> list[dict[str, Any]] | int:
    # The replay's own report line goes to stderr: stdout is the backtest's.
    with contextlib.redirect_stdout(sys.stderr):
        code = replay.run(replay_args)
    if code:
        return int(code)
    return _read_rows(Path(replay_args.out))


def _history(replay_args: argparse.Namespace) -> list[bytes]:
    """The replay's input, read here for --in-process (files, or the --from-kafka range)."""
    from tqdm import tqdm

    from deploy.replay_input import resolve

    config = load_config(replay_args.config)
    bootstrap = kafka_access(config.kafka, replay_args.bootstrap)
    if replay_args.from_kafka:
        verify_access(bootstrap)
    source = resolve(replay_args, config, bootstrap)
    with tqdm(source.lines, desc="events", unit="ev", total=source.total, file=sys.stderr,
              disable=None, unit_scale=True) as bar:  # fmt: skip
        return list(bar)


def _in_process(replay_args: argparse.Namespace, lines: list[bytes]) -> list[dict[str, Any]]:
    """The rows a replay with these arguments gives, from the processors' pure core."""
    from processors.core.results import dumps
    from processors.harness import run as harness_run

    config = load_config(replay_args.config)
    rows = harness_run(config, lines, config.kafka.partitions)
    # Kept like a replay's results file, so --results-dir means the same either way.
    Path(replay_args.out).write_bytes(b"".join(dumps(r) + b"\n" for r in rows))
    return json.loads(json.dumps(rows))  # plain JSON values, as read back from a file


def run(args: argparse.Namespace) -> int:
    from deploy.replay_input import UsageError

    if args.from_kafka and (args.since is None or args.until is None):
        print("ripple backtest: --from-kafka needs --since T and --until T", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config)
        if args.compare:
            load_config(args.compare)
    except ConfigError as exc:
        print(f"ripple backtest: {exc}", file=sys.stderr)
        return 2
    base = args.namespace or f"{config.kafka.namespace}-backtest"
    if args.from_kafka and args.source_namespace is None:
        args.source_namespace = config.kafka.namespace  # B reads what A reads
    rule_sets = [("a", args.config, base)]
    if args.compare:
        rule_sets.append(("b", args.compare, f"{base}-b"))
    with tempfile.TemporaryDirectory(prefix="ripple-backtest-") as tmp:
        out_dir = Path(args.results_dir or tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        results = []
        lines: list[bytes] | None = None
        for tag, path, ns in rule_sets:
            r_args = replay_namespace(args, path, ns, out_dir / f"{tag}.jsonl")
            try:
                if args.in_process:
                    if lines is None:  # read once, for both rule sets
                        lines = _history(r_args)
                    rows = _in_process(r_args, lines)
                else:
                    got = _through_kafka(r_args)
                    if isinstance(got, int):
                        return got
                    rows = got
            except (UsageError, ConfigError, ValueError) as exc:
                print(f"ripple backtest: {exc}", file=sys.stderr)
                return 2
            results.append(summary.summarise(rows, path or "$RIPPLE_CONFIG"))
    if len(results) == 1:
        out = json.dumps(summary.to_json(results[0]), indent=1) + "\n" if args.json else summary.render(results[0])  # fmt: skip
    else:
        a, b = results
        out = json.dumps(summary.compare_json(a, b), indent=1) + "\n" if args.json else summary.render_compare(a, b)  # fmt: skip
    sys.stdout.write(out)
    return 0
