"""``ripple replay``: re-run history through the processors and write its results file."""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ingest.config import Config, ConfigError, load_config
from ingest.kafka_client import KafkaAccess, kafka_access, verify_access
from processors.core.windows import iso
from processors.wire import WindowCounts


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="replay canonical events through the processors and write the results file",
        description=(
            "Produce canonical events (JSON Lines files, optionally .gz or .zst, or a time range "
            "of a namespace's <NS>.events with --from-kafka; invalid records too, they reach "
            "the namespace's DLQ) into <NAME>.events, run the processors for that namespace "
            "with the given tracking configuration, wait until every window is final, and "
            "write every window row (last revision, sorted) to --out. The namespace is reset "
            "first, so the same input always gives the same file. With --backfill the 1m "
            "window counts are also loaded into the local Prometheus at their event times."
        ),
    )
    p.add_argument("--config", help="tracking configuration TOML (default $RIPPLE_CONFIG)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", action="append", metavar="FILE",
                        help="events file (.jsonl, .jsonl.gz, .jsonl.zst); repeat for several, in order")  # fmt: skip
    source.add_argument("--from-kafka", action="store_true",
                        help="read <SOURCE>.events between --since and --until instead of files")  # fmt: skip
    p.add_argument("--source-namespace", metavar="NS",
                   help="namespace read by --from-kafka (default: the config's live namespace)")  # fmt: skip
    p.add_argument("--since", metavar="T", help="--from-kafka: first event time, RFC 3339 or unix seconds")  # fmt: skip
    p.add_argument("--until", metavar="T", help="--from-kafka: end event time (excluded)")
    p.add_argument("--slack", type=float, metavar="SECONDS",
                   help="--from-kafka: read this far past --until for late records "
                        "(default processing.allowed_lateness_seconds)")  # fmt: skip
    p.add_argument("--namespace", required=True, help="namespace of the replay's topics and state")
    p.add_argument("--out", required=True, help="results file to write (JSON Lines)")
    p.add_argument(
        "--speed", default="max", help="'max' (default) or a pace like 60x, by event time"
    )
    p.add_argument(
        "--bootstrap", help="Kafka bootstrap servers (default: the config's, i.e. the local stack)"
    )
    p.add_argument("--workers", type=int, default=1, help="processors workers to start (default 1)")
    p.add_argument(
        "--no-workers", action="store_true", help="do not start workers: they run elsewhere"
    )
    p.add_argument("--events-partitions", type=int, default=1,
                   help="partitions of <NAME>.events (default 1: the file's order is the stream's order)")  # fmt: skip
    p.add_argument(
        "--state-dir", help="where the replay workers keep state (default <stack state>/replay)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=1800,
        help="seconds to wait for final results (default 1800)",
    )
    p.add_argument("--backfill", action="store_true",
                   help="load the 1m window counts into the local Prometheus (promtool blocks) "
                        "at their event times; only history older than 3 hours")  # fmt: skip
    p.add_argument("--backfill-reload", choices=("wait", "restart"), default="wait",
                   help="how Prometheus picks the blocks up: wait for its next block reload "
                        "(at most a minute, default) or restart it")  # fmt: skip
    p.add_argument("--backfill-file", metavar="FILE",
                   help="OpenMetrics file to write (default <out>.om)")  # fmt: skip
    p.set_defaults(func=run)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse_speed(speed: str) -> float | None:
    if speed == "max":
        return None
    try:
        factor = float(speed.rstrip("x"))
    except ValueError:
        raise ValueError(f"--speed must be 'max' or like '60x', not {speed!r}") from None
    if factor <= 0:
        raise ValueError("--speed must be positive")
    return factor


class Pacer:
    """Sleeps so that event time advances ``factor`` times faster than wall time."""

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self.origin: tuple[float, float] | None = None

    def __call__(self, ts_ms: int | None) -> None:
        if ts_ms is None:
            return
        now = time.monotonic()
        if self.origin is None:
            self.origin = (ts_ms / 1000, now)
            return
        due = self.origin[1] + (ts_ms / 1000 - self.origin[0]) / self.factor
        if due > now:
            time.sleep(due - now)


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the replay process dies (Linux)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def start_workers(
    n: int, args: argparse.Namespace, bootstrap: KafkaAccess, state: Path
) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(n):
        cmd = [sys.executable, "-m", "deploy.cli", "worker", "--namespace", args.namespace,
               "--bootstrap", bootstrap.bootstrap, "--web-port", str(free_port()), "--state-dir", str(state)]  # fmt: skip
        if args.config:
            cmd += ["--config", args.config]
        log = (state / f"worker-{i}.log").open("ab")
        procs.append(
            subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        )
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from deploy.replay_input import resolve
    from processors.history.replay import (
        collect_results,
        produce_lines,
        request_flush,
        write_results,
    )
    from processors.job.topology import delete_namespace, ensure_topics

    try:
        config = load_config(args.config)
        factor = parse_speed(args.speed)
        bootstrap = kafka_access(config.kafka, args.bootstrap)
        verify_access(bootstrap)
    except (ConfigError, ValueError) as exc:
        print(f"ripple replay: {exc}", file=sys.stderr)
        return 2
    if args.namespace == config.kafka.namespace:
        print(
            f"ripple replay: refusing to reset the live namespace {args.namespace!r}",
            file=sys.stderr,
        )
        return 2
    try:
        source = resolve(args, config, bootstrap)
    except ValueError as exc:
        print(f"ripple replay: {exc}", file=sys.stderr)
        return 2
    state = Path(args.state_dir or Path(config.stack.state_dir) / "replay") / args.namespace
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)

    def _terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # so that the finally below stops the workers

    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    delete_namespace(bootstrap, args.namespace)
    ensure_topics(bootstrap, args.namespace, config.kafka.partitions, args.events_partitions)
    procs = [] if args.no_workers else start_workers(args.workers, args, bootstrap, state)
    try:
        # tqdm shows events/s and, with the expected total, the ETA.
        with tqdm(desc="produce", unit="ev", total=source.total, file=sys.stderr,
                  disable=None, unit_scale=True) as bar:  # fmt: skip
            n = produce_lines(bootstrap, args.namespace, source.lines,
                              pace=Pacer(factor) if factor else None, progress=bar.update)  # fmt: skip
            bar.total = n  # --from-kafka's total is an upper bound (out-of-range records)
        request_flush(bootstrap, args.namespace)
        with tqdm(desc="results", unit="row", file=sys.stderr, disable=None) as bar:

            def on_row(total: int) -> None:
                bar.n = total
                bar.refresh()

            alive = (lambda: any(p.poll() is None for p in procs)) if procs else (lambda: True)
            counts: dict[int, WindowCounts] = {}
            rows = collect_results(
                bootstrap, args.namespace, args.timeout, alive=alive, on_row=on_row, counts=counts
            )
        write_results(rows, args.out)
    except (TimeoutError, RuntimeError) as exc:
        print(f"ripple replay: {exc}; worker logs in {state}", file=sys.stderr)
        return 1
    finally:
        stop_workers(procs)
    took = time.monotonic() - started
    print(
        f"replayed {n} events from {source.label} into {args.namespace!r}: "
        f"{len(rows)} result rows in {args.out} ({took:.1f}s)"
    )
    return run_backfill(args, config, [counts[s] for s in sorted(counts)]) if args.backfill else 0


def run_backfill(args: argparse.Namespace, config: Config, windows: list[WindowCounts]) -> int:
    from deploy.backfill import BackfillError, backfill

    file = Path(args.backfill_file or f"{args.out}.om")
    try:
        report = backfill(windows, args.namespace, config, file, reload=args.backfill_reload)
    except BackfillError as exc:
        print(f"ripple replay: backfill: {exc}", file=sys.stderr)
        return 1
    for warning in report.warnings:
        print(f"ripple replay: backfill: {warning}", file=sys.stderr)
    st = report.stats
    span = (
        f"{iso(st.first)} .. {iso(st.last)}" if st.first is not None and st.last is not None else ""
    )
    print(
        f"backfilled {st.samples} samples of {st.series} series ({span}) from {file} "
        f"into Prometheus as {len(report.blocks)} blocks; {report.loaded}"
    )
    return 0
