"""``ripple report``: a period report for the marketing side, as one HTML page (and a PDF)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from deploy.report.figures import Period, R, Report

HELP = """\
Write a report of the results rows of a period: one self-contained HTML file (charts inline
as SVG; opening it needs no network), optionally printed to PDF with headless Chromium.

Source: --results FILE (a results file of `ripple replay`: JSON Lines, .gz or .zst) or
--namespace NS (the compacted <NS>.results topic, read to its completion record after a
replay or to its end for the live namespace; windows still open are not in it yet).

Contents, per brand: mentions, unique authors, potential reach, engagements, engagement
rate, amplification and share of voice for the period, with the change against the
comparison period; share of voice against the other tracked brands over time; mentions and
engagements per platform; sentiment and top posts/authors/links where those rows exist.
Per site: pageviews, social referrals by network, share clicks and share rate, referral
yield, social conversions, their rate and value, paid vs organic where present. The alerts
that fired (a timeline, with the numbers the rule looked at), campaign counters and a short
pipeline section (events in, dead letters, late events) from Prometheus when reachable.

Every figure is computed from the rows as the dashboards do: counts are sums of 1m
windows, ratios are ratios of sums (never averaged ratios), referral yield uses 1h rows.

Times are RFC 3339 (2026-11-20T08:00:00Z) or unix seconds; a row is in the period when its
window lies within [--since, --until). --compare previous (default) is the period of the
same length just before; --compare T..T names one; --compare none shows no changes.

Examples:
  ripple report --results rerun.jsonl --since 2026-11-20T00:00:00Z --until 2026-11-21T00:00:00Z --out day.html
  ripple report --namespace ripple --since 1763625600 --until 1763640000 --out r.html --pdf r.pdf
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write a period report (HTML with charts, optionally PDF) of the results rows",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--results", metavar="FILE", help="results file (.jsonl, .jsonl.gz, .jsonl.zst)")  # fmt: skip
    src.add_argument("--namespace", metavar="NS", help="read <NS>.results from Kafka")
    p.add_argument("--config", metavar="FILE",
                   help="configuration (default $RIPPLE_CONFIG): Kafka bootstrap, Prometheus port, "
                        "which brands are competitors")  # fmt: skip
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: the config's)")
    p.add_argument("--since", metavar="T", help="start of the period (default: the first row's window)")  # fmt: skip
    p.add_argument("--until", metavar="T", help="end of the period, excluded (default: the last row's window end)")  # fmt: skip
    p.add_argument("--compare", default="previous", metavar="previous|none|T..T",
                   help="comparison period (default previous: the same length just before)")  # fmt: skip
    p.add_argument("--out", required=True, metavar="FILE", help="HTML file to write")
    p.add_argument("--pdf", metavar="FILE", help="also print the page to this PDF (headless Chromium)")  # fmt: skip
    p.add_argument("--prometheus", metavar="URL|none",
                   help="Prometheus for the pipeline and campaign counters (default: the local "
                        "stack's, stack.prometheus_port); 'none' leaves them out")  # fmt: skip
    p.add_argument("--pipeline-namespace", metavar="NS",
                   help="namespace of those counters (default --namespace; none for --results)")  # fmt: skip
    p.add_argument("--timeout", type=float, default=120, metavar="SEC",
                   help="longest wait reading <NS>.results (default 120)")  # fmt: skip
    p.set_defaults(func=run)


def _say(msg: str) -> None:
    print(f"ripple report: {msg}", file=sys.stderr, flush=True)


def periods(
    rows: list[R], since: str | None, until: str | None, compare: str
) -> tuple[Period, Period | None]:
    """The period (defaults: the rows' extent) and the comparison period; ValueError if bad."""
    from deploy.report.figures import Period, Rows
    from processors.history.replay_kafka import parse_time

    span = Rows(rows).span()
    start = parse_time(since) if since else (span[0] if span else 0.0)
    end = parse_time(until) if until else (span[1] if span else 0.0)
    if end <= start:
        raise ValueError(f"--until must be after --since ({end:g} <= {start:g})")
    period = Period(start, end)
    if compare == "none":
        return period, None
    if compare == "previous":
        return period, Period(start - (end - start), start)
    a, sep, b = compare.partition("..")
    if not sep:
        raise ValueError(f"--compare must be previous, none or T..T, not {compare!r}")
    c = Period(parse_time(a), parse_time(b))
    if c.until <= c.since:
        raise ValueError("--compare: the end must be after the start")
    return period, c


def write_report(
    rows: list[R],
    source: str,
    period: Period,
    compare: Period | None,
    config: Config,
    out: Path,
    pdf: Path | None = None,
    prometheus: str | None = None,
    pipeline_namespace: str | None = None,
    pipeline_period: Period | None = None,
) -> Report:
    """Figures, charts, page (and PDF); raises ReportError / PdfError. ``pipeline_period``:
    the processing-time range of the Prometheus counters when it is not the period's."""
    from deploy.report import page, pipeline
    from deploy.report.figures import build
    from deploy.report.pdf import print_pdf

    brands = {b.name: b.competitor for b in config.brands}
    _say(f"{len(rows):,} rows; figures for {period.label}")
    report = build(rows, source, period, compare, brands)
    report.pipeline = pipeline.fetch(prometheus, pipeline_namespace, pipeline_period or period)
    n = sum(len(b.charts) for b in report.brands) + sum(len(s.charts) for s in report.sites)
    _say(f"{len(report.brands)} brands, {len(report.sites)} sites, {len(report.alerts)} alerts; rendering {n} charts")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page.render(report), encoding="utf-8")
    if pdf is not None:
        _say(f"printing {pdf} with headless Chromium")
        print_pdf(out, pdf)
    return report


def run(args: argparse.Namespace) -> int:
    from deploy.report.figures import ReportError, load_file, load_namespace
    from deploy.report.pdf import PdfError

    started = time.monotonic()
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        _say(str(exc))
        return 2
    prometheus = args.prometheus or f"http://127.0.0.1:{config.stack.prometheus_port}"
    if prometheus == "none":
        prometheus = None
    try:
        if args.results:
            _say(f"reading {args.results}")
            rows, source = load_file(args.results), f"results file {args.results}"
        else:
            bootstrap = args.bootstrap or config.kafka.bootstrap
            _say(f"reading {args.namespace}.results from {bootstrap}")
            rows = load_namespace(bootstrap, args.namespace, args.timeout)
            source = f"{args.namespace}.results on {bootstrap}"
    except ReportError as exc:
        _say(str(exc))
        return 2 if args.results else 1
    try:
        period, compare = periods(rows, args.since, args.until, args.compare)
        write_report(rows, source, period, compare, config, Path(args.out),
                     Path(args.pdf) if args.pdf else None, prometheus,
                     args.pipeline_namespace or args.namespace)  # fmt: skip
    except ValueError as exc:
        _say(str(exc))
        return 2
    except (ReportError, PdfError) as exc:
        _say(str(exc))
        return 1
    print(f"wrote {args.out}" + (f" and {args.pdf}" if args.pdf else "") + f" ({time.monotonic() - started:.1f}s)")  # fmt: skip
    return 0
