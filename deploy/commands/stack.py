"""``ripple up`` / ``ripple status`` / ``ripple down``: the local stack on loopback."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deploy.stack.local import LocalStack

UP_HELP = """\
Start, in the background, everything the pipeline needs on 127.0.0.1 and wait until each
part is healthy: Apache Kafka (KRaft; one node, or --brokers N nodes, each a broker and a
voter, on kafka_port + 100 * i), Alertmanager, Prometheus (scraping every
Ripple process, loading dashboards/out/*.yaml rules), the webhook receiver Alertmanager
notifies (stack.webhook_port; readable text in logs/notifications.log, a page at its URL)
and Ripple's own processes: the faust workers (stack.workers of them), the website
collector when [[sites]] are configured and every [sources.<name>] with enabled = true.
The namespace's topics (<ns>.events, .dlq, .results, .alerts) are created with
kafka.partitions partitions.

Idempotent: what already runs is left alone. State (data, generated configs, one log file
per service under logs/) lives in the state dir: --state-dir, else stack.state_dir of the
config, else .ripple/ in the working directory. Ports come from the [stack] section.
Kafka's jars are fetched once with Maven into ~/.cache/ripple (or $RIPPLE_JAR_CACHE).
"""

STATUS_HELP = """\
Probe each component of the stack: Kafka by a metadata request, the others by HTTP.
Exit status 0 when all are healthy, 1 when any is down.
"""

DOWN_HELP = """\
Stop every process the stack started (Ripple's processes first, Kafka last, each with
SIGTERM for a clean shutdown, SIGKILL only after a timeout). Data stays; --purge deletes
the whole state dir.
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", metavar="FILE", help="TOML configuration file (default $RIPPLE_CONFIG)"
    )
    p.add_argument(
        "--state-dir", metavar="DIR", help="state directory (default stack.state_dir, .ripple)"
    )


def register(sub: argparse._SubParsersAction) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    up = sub.add_parser(
        "up",
        help="start the local stack in the background",
        description=UP_HELP,
        formatter_class=fmt,
    )
    _common(up)
    up.add_argument(
        "--workers", type=int, metavar="N", help="number of faust workers (default stack.workers)"
    )
    up.add_argument(
        "--brokers",
        type=int,
        metavar="N",
        help="Kafka nodes, each broker and KRaft voter (default stack.brokers, 1); with 3, "
        "set kafka.replication_factor = 3 and kafka.min_insync_replicas = 2",
    )
    up.add_argument(
        "--prepare-only",
        action="store_true",
        help="only fetch Kafka's jars and format its data dir; start nothing",
    )
    up.add_argument(
        "--timeout", type=float, default=120.0, metavar="SEC", help="health wait per component"
    )
    up.set_defaults(func=cmd_up)

    st = sub.add_parser(
        "status", help="show each component's health", description=STATUS_HELP, formatter_class=fmt
    )
    _common(st)
    st.set_defaults(func=cmd_status)

    down = sub.add_parser(
        "down", help="stop the local stack (keeps data)", description=DOWN_HELP, formatter_class=fmt
    )
    _common(down)
    down.add_argument(
        "--purge", action="store_true", help="also delete the state dir (all data and logs)"
    )
    down.set_defaults(func=cmd_down)


def _stack(
    args: argparse.Namespace, workers: int | None = None, brokers: int | None = None
) -> LocalStack:
    # Imported here: `ripple --help` stays fast.
    from deploy.stack.local import LocalStack
    from ingest.config import load_config

    return LocalStack(load_config(args.config), args.state_dir, workers=workers, brokers=brokers)


def _err(msg: str) -> int:
    print(f"ripple: {msg}", file=sys.stderr)
    return 1


def _table(stack: LocalStack) -> bool:
    comps = stack.status()
    width = max(len(c.name) for c in comps)
    for c in comps:
        state = "up" if c.healthy else ("running, not healthy" if c.pid else "down")
        pid = f"pid {c.pid}" if c.pid else ""
        print(f"  {c.name:<{width}}  {state:<5}  {c.where:<28} {pid}")
    return all(c.healthy for c in comps)


def print_where(stack: LocalStack) -> None:
    """Where to look once the stack is up (the browser test opens every URL printed here)."""
    from deploy.demo_view import alertmanager_lines, prometheus_ui, webhook_line
    from deploy.stack.webhook_receiver import LOG_NAME

    prom = prometheus_ui(stack.prometheus_url)
    print(f"\n  Kafka bootstrap     {stack.bootstrap}")
    print(f"  Prometheus targets  {prom}/targets")
    print(f"  Prometheus alerts   {prom}/alerts   (firing and pending, from the generated rules)")
    for line in alertmanager_lines(stack.alertmanager_url):
        print(line)
    print(webhook_line(stack.webhook_url, str(stack.paths.logs / LOG_NAME)))
    print(f"  logs                {stack.paths.logs}/")


def cmd_up(args: argparse.Namespace) -> int:
    from deploy.stack.kafka import KafkaError
    from deploy.stack.supervisor import ServiceError
    from ingest.config import ConfigError

    try:
        stack = _stack(args, workers=args.workers, brokers=args.brokers)
        if args.prepare_only:
            jars = stack.prepare()
            print(
                f"Kafka {stack.cfg.stack.kafka_version} jars in {jars}; data dir formatted in {stack.paths.root}"
            )
            return 0
        t0 = time.monotonic()
        result = stack.up(timeout=args.timeout)
    except (ConfigError, KafkaError, ServiceError, TimeoutError) as exc:
        return _err(str(exc))
    took = time.monotonic() - t0
    if result.started:
        print(
            f"Ripple stack up in {took:.1f}s (started: {', '.join(result.started)}); state in {stack.paths.root}"
        )
    else:
        print(f"Ripple stack is already up; state in {stack.paths.root}")
    ok = _table(stack)
    print_where(stack)
    if stack.cfg.kafka.bootstrap.split(",")[0] not in stack.bootstrap.split(","):
        print(
            f"  warning: kafka.bootstrap is {stack.cfg.kafka.bootstrap} but the stack's broker is "
            f"{stack.bootstrap}; set both (or stack.kafka_port) consistently",
            file=sys.stderr,
        )
    if stack.cfg.stack.brokers > 1 and stack.cfg.kafka.replication_factor == 1:
        print(
            "  note: kafka.replication_factor is 1, so each of Ripple's partitions lives on "
            "one broker; set 3 (and kafka.min_insync_replicas = 2) to survive a broker loss",
            file=sys.stderr,
        )
    return 0 if ok else 1


def cmd_status(args: argparse.Namespace) -> int:
    from ingest.config import ConfigError

    try:
        stack = _stack(args)
    except ConfigError as exc:
        return _err(str(exc))
    print(f"Ripple stack in {stack.paths.root}:")
    return 0 if _table(stack) else 1


def cmd_down(args: argparse.Namespace) -> int:
    from ingest.config import ConfigError

    try:
        stack = _stack(args)
        stopped = stack.down(purge=args.purge)
    except (ConfigError, RuntimeError) as exc:
        return _err(str(exc))
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    if args.purge:
        print(f"deleted {stack.paths.root}")
    else:
        print(f"data kept in {stack.paths.root} (`ripple down --purge` deletes it)")
    return 0
