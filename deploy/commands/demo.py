"""``ripple demo``: the stack, a generated history played into the live namespace, and a
live summary in the terminal."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deploy.demo import DemoPlan, Feeder
    from deploy.stack.local import LocalStack

HELP = """\
Start the local stack with the demo configuration (deploy/demo.toml: three brands, two of
them competitors, a campaign and the website acme.com) and play a generated history of the
last --hours (default 4) into the LIVE namespace, paced by event time (--speed, default
160x: four hours in about 90 seconds): social mentions and engagements on four platforms,
pageviews, social referrals, share clicks and conversions, and an engagement drop for acme
on bluesky an hour ago. The stream-side EngagementDrop fires on it and reaches Alertmanager
(label source="stream"). Once the history has caught up with the clock, events keep flowing
in real time (the website's through the running collector) while a summary refreshes for
--minutes; the stack keeps running afterwards (`ripple down` stops it). At the end it
writes a report of the history (`ripple report`: its second half against its first) and
prints its path.

A second demo within --hours of the first plays no history (its events would only be
late); `ripple down --purge` starts from scratch. Once the demo ends no more events arrive,
so IngestStalled fires ten minutes later, as it should.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="start the stack and play the demo history into the live pipeline",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE",
                   help="configuration (default $RIPPLE_CONFIG, else deploy/demo.toml)")  # fmt: skip
    p.add_argument("--state-dir", metavar="DIR", help="stack state dir (default stack.state_dir)")
    p.add_argument("--minutes", type=float, default=2.0, metavar="N",
                   help="minutes of live traffic and summary (default 2; 0: show it once)")  # fmt: skip
    p.add_argument("--no-wait", action="store_true",
                   help="do not wait for the dashboards' data and the stream alert")  # fmt: skip
    p.add_argument("--speed", default="160x", help="pace of the history, by event time (160x)")
    p.add_argument("--hours", type=float, default=4.0, help="hours of history, ending now (4)")
    p.add_argument("--drop-at", type=float, default=3.0, metavar="H",
                   help="hours into the history at which acme's bluesky engagement drops (3)")  # fmt: skip
    p.add_argument("--social-rate", type=float, default=120.0, metavar="N",
                   help="social events per minute of event time (120)")  # fmt: skip
    p.add_argument("--web-rate", type=float, default=40.0, metavar="N",
                   help="website events per minute of event time (40)")  # fmt: skip
    p.add_argument("--timeout", type=float, default=180.0, metavar="SEC",
                   help="longest wait for the stack and, after the history, for the alert")  # fmt: skip
    p.set_defaults(func=run)


def _config_path(arg: str | None) -> str:
    from deploy.demo import DEFAULT_CONFIG

    return arg or os.environ.get("RIPPLE_CONFIG") or str(DEFAULT_CONFIG)


def run(args: argparse.Namespace) -> int:
    from deploy.commands.replay import parse_speed
    from deploy.stack.kafka import KafkaError
    from deploy.stack.local import LocalStack
    from deploy.stack.supervisor import ServiceError
    from ingest.config import ConfigError, load_config

    # kafka-python narrates slow polls of the feeder's producer at WARNING: not the demo's news.
    logging.getLogger("kafka").setLevel(logging.ERROR)
    try:
        cfg = load_config(_config_path(args.config))
        speed = parse_speed(args.speed) or 1e9  # "max": as fast as it goes
        _plan(args)  # checks the arguments; the plan is made once the stack is up
    except (ConfigError, ValueError) as exc:
        print(f"ripple demo: {exc}", file=sys.stderr)
        return 2
    if cfg.brand("acme") is None or not cfg.sites:
        print(f"ripple demo: {cfg.path} tracks no brand 'acme' or no site; the demo history "
              "would count nothing (use deploy/demo.toml)", file=sys.stderr)  # fmt: skip
        return 2
    stack = LocalStack(cfg, args.state_dir)
    try:
        _up(stack, args.timeout)
    except (KafkaError, ServiceError, TimeoutError) as exc:
        print(f"ripple demo: {exc}", file=sys.stderr)
        return 1
    return _play(stack, _plan(args), speed, args)  # the history ends now, not before the start


def _plan(args: argparse.Namespace) -> DemoPlan:
    from deploy.demo import make_plan

    return make_plan(time.time(), hours=args.hours, drop_at_hours=args.drop_at,
                     live_minutes=args.minutes, social_per_minute=args.social_rate,
                     web_per_minute=args.web_rate)  # fmt: skip


def _up(stack: LocalStack, timeout: float) -> None:
    from deploy.demo import ensure_stack

    t0 = time.monotonic()
    print("Starting the stack (Kafka, Prometheus, Alertmanager, workers, collector)...")
    restarted = ensure_stack(stack, timeout)
    if restarted:
        print(f"  restarted {', '.join(restarted)} with {stack.cfg.path}")
    print(f"  up after {time.monotonic() - t0:.0f}s; state in {stack.paths.root}")


def _play(stack: LocalStack, plan: DemoPlan, speed: float, args: argparse.Namespace) -> int:
    from deploy.demo import CollectorClient, Feeder, history_present

    ns = stack.cfg.kafka.namespace
    if history_present(stack.bootstrap, ns, plan.spec.start):
        print(f"  {ns}.events already holds events of the last {args.hours:g}h (an earlier "
              "demo?): playing live traffic only (`ripple down --purge` starts afresh)")  # fmt: skip
        plan = dataclasses.replace(plan, replay_history=False)
    collector = next((s for s in stack.ripple_specs() if s.name == "collector"), None)
    client = None
    if collector is not None:
        site = stack.cfg.sites[0]
        client = CollectorClient(
            f"http://127.0.0.1:{collector.metrics_port}", f"https://{site.domains[0]}"
        )
    feeder = Feeder(plan, stack.bootstrap, ns, speed, client)
    feeder.start()
    try:
        if plan.replay_history:
            print(f"Playing {args.hours:g}h of history into {ns}.events at {args.speed}...")
            _catch_up(stack, feeder, wait=not args.no_wait, timeout=args.timeout)
        if feeder.progress.error:
            print(f"ripple demo: sending events failed: {feeder.progress.error}", file=sys.stderr)
            return 1
        _print_where(stack)
        _summary(stack, feeder, args.minutes)
    except KeyboardInterrupt:
        print()
    finally:
        feeder.stop()
        feeder.join(timeout=15)
    _report(stack, plan)
    _notifications(stack)
    print("\nThe stack keeps running: `ripple status`, `ripple down` (--purge deletes the data).")
    return 0


def _report(stack: LocalStack, plan: DemoPlan) -> None:
    """``ripple report`` of the demo history (from <ns>.results): its second half against
    its first, so the drop an hour ago shows as what went down."""
    from deploy.commands.report import write_report
    from deploy.report.figures import Period, ReportError, Rows, load_namespace
    from deploy.report.pdf import PdfError

    ns, out = stack.cfg.kafka.namespace, stack.paths.root / "demo-report.html"
    print(f"\nWriting the report of the demo history from {ns}.results...")
    try:
        rows = load_namespace(stack.bootstrap, ns, timeout=60)
        span = Rows(rows).span()
        # Windows of the last allowed lateness are not final yet: end where the rows end.
        end = min(plan.live_from, span[1] if span else plan.live_from) // 60 * 60
        start = plan.spec.start // 60 * 60
        mid = (start + (end - start) / 2) // 60 * 60
        write_report(rows, f"{ns}.results on {stack.bootstrap}", Period(mid, end),
                     Period(start, mid), stack.cfg, out, prometheus=stack.prometheus_url,
                     pipeline_namespace=ns,
                     # The history was processed in the last minutes, not at its event times.
                     pipeline_period=Period(start, time.time()))  # fmt: skip
    except (ReportError, PdfError) as exc:
        print(f"  no report: {exc}", file=sys.stderr)
        return
    print(f"  report: {out.resolve()} (open it in a browser; `ripple report --help` for more)")


def _notifications(stack: LocalStack) -> None:
    """The demo's end: the newest notification Alertmanager sent, and where all of them are."""
    from deploy.demo_view import last_notification
    from deploy.stack.webhook_receiver import LOG_NAME

    last = last_notification(stack.webhook_url)
    print(f"\nLast notification: {last or 'none yet (Alertmanager waits group_wait, 30s)'}")
    print(f"  all of them: {stack.webhook_url}/ and {stack.paths.logs / LOG_NAME}")


def _catch_up(stack: LocalStack, feeder: Feeder, wait: bool, timeout: float) -> None:
    """Progress until the history is sent, then (``wait``) until the dashboards have data
    and the stream EngagementDrop is in Alertmanager."""
    from deploy.demo import DROP
    from deploy.demo_view import am_alerts, prom_query, stream_alert

    prog, ns = feeder.progress, stack.cfg.kafka.namespace
    tty = sys.stdout.isatty()
    data_at = alert_at = None
    deadline: float | None = None
    last_print = 0.0
    while True:
        now = time.monotonic()
        elapsed = now - prog.started_at
        if data_at is None and prom_query(
            stack.prometheus_url, f'brand_platform:ripple_smm_mentions:rate5m{{namespace="{ns}"}}'
        ):
            data_at = elapsed
        if alert_at is None and stream_alert(am_alerts(stack.alertmanager_url), *DROP):
            alert_at = elapsed
        caught_up = prog.caught_up_at is not None or prog.done
        if caught_up and deadline is None:
            deadline = now + timeout
        behind = (
            "" if prog.last_ts is None else f", event time {time.time() - prog.last_ts:.0f}s behind"
        )
        data = "waiting" if data_at is None else f"data after {data_at:.0f}s"
        alert = "waiting" if alert_at is None else f"in Alertmanager after {alert_at:.0f}s"
        line = (
            f"  {elapsed:5.0f}s  {prog.produced + prog.posted:,} events sent{behind}; "
            f"dashboards: {data}; stream EngagementDrop: {alert}"
        )
        if tty:
            print("\r\x1b[K" + line, end="", flush=True)
        elif now - last_print >= 10:
            print(line, flush=True)
            last_print = now
        done_waiting = not wait or (data_at is not None and alert_at is not None)
        if caught_up and (done_waiting or (deadline is not None and now > deadline)):
            break
        time.sleep(1.0)
    if tty:
        print()
    print(line.strip())
    if wait and alert_at is None:
        print("  warning: the stream EngagementDrop did not reach Alertmanager in time; "
              "see the workers' logs", file=sys.stderr)  # fmt: skip


def _print_where(stack: LocalStack) -> None:
    from deploy.demo_view import where_to_look
    from deploy.stack.services import JOB_WORKER

    specs = stack.ripple_specs()
    workers = [f"http://127.0.0.1:{s.metrics_port}" for s in specs if s.job == JOB_WORKER]
    collector = next((f"http://127.0.0.1:{s.metrics_port}" for s in specs if s.name == "collector"), None)  # fmt: skip
    print()
    for line in where_to_look(stack.prometheus_url, stack.alertmanager_url, workers, collector,
                              stack.cfg.kafka.namespace, stack.webhook_url):  # fmt: skip
        print(line)
    print()


def _summary(stack: LocalStack, feeder: Feeder, minutes: float, every: float = 5.0) -> None:
    from deploy.demo_view import fetch_summary, render

    tty = sys.stdout.isatty()
    end = time.monotonic() + minutes * 60
    shown = 0
    while True:
        ns = stack.cfg.kafka.namespace
        summary = fetch_summary(stack.prometheus_url, stack.alertmanager_url, ns, stack.webhook_url)
        lines = render(summary, ns)
        prog = feeder.progress
        if minutes > 0:
            left = max(0.0, end - time.monotonic())
            refused = feeder.collector.failed if feeder.collector else 0
            lines.append(f"  live traffic: {prog.produced:,} events to Kafka, {prog.posted:,} "
                         f"through the collector{f' ({refused} refused)' if refused else ''}; "
                         f"{left:.0f}s left (Ctrl-C stops)")  # fmt: skip
        if tty and shown:
            print(f"\x1b[{shown}A\x1b[J", end="")
        print("\n".join(lines), flush=True)
        shown = len(lines)
        if time.monotonic() + every > end:
            break
        time.sleep(every)
        if not tty:
            print()
