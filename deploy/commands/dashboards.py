"""``ripple dashboards generate|check|push``: the Prometheus rules, alerts and Grafana dashboards.

Everything under ``dashboards/out/`` (plus ``deploy/alertmanager.yml`` and the Grafana
provisioning files) is generated from the metric catalogue and ``dashboards/config.py``.
"""

from __future__ import annotations

import argparse
import sys

from dashboards import checks, generate
from dashboards.push import PushError, push


def _generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dashboards.config import CONFIG, from_ripple_config
    from ingest.config import ConfigError, load_config

    cfg = CONFIG
    if args.config:  # its [alerts], [notifications] and campaign dates; defaults otherwise
        try:
            cfg = from_ripple_config(load_config(args.config))
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    from dashboards.alertmanager import write_secret_files

    try:  # secrets named by *_env go to files alertmanager.yml points at (never into it)
        for path in write_secret_files(cfg):
            print(f"wrote secret file {path} (mode 0600)")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    written = generate.write(cfg, root=Path(args.root) if args.root else None)
    for path in written:
        print(f"wrote {path}")
    if not written:
        print("all generated files are up to date")
    return 0


def _check(args: argparse.Namespace) -> int:
    try:
        problems = checks.all_checks()
    except FileNotFoundError as exc:  # promtool / amtool missing
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("rules, alerts, dashboards and alertmanager.yml: OK (promtool and amtool included)")
    return 0


def _push(args: argparse.Namespace) -> int:
    try:
        pushed = push(args.url, prometheus_url=args.prometheus_url)
    except PushError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for p in pushed:
        print(f"pushed {p.uid}: {p.title} {p.url}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "dashboards",
        help="generate, check or push the Prometheus rules, alerts and Grafana dashboards",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inner = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    g = inner.add_parser(
        "generate",
        help="write dashboards/out/*, deploy/alertmanager.yml and Grafana provisioning",
        description="Write every generated file. With --config, the TOML's [alerts.<name>] "
        "(factors, floors), [notifications] (Slack, e-mail, webhook) and [[campaigns]] dates "
        "flow into the rules, deploy/alertmanager.yml and the dashboards' annotations; the "
        "committed files are the defaults (no --config).",
    )
    g.add_argument("--config", help="a Ripple TOML whose alert rules and notifications to use")
    g.add_argument("--root", help="write under this directory instead of the repository")
    g.set_defaults(func=_generate)
    inner.add_parser(
        "check",
        help="generated files up to date, every query names known series, promtool/amtool pass",
    ).set_defaults(func=_check)
    p = inner.add_parser(
        "push",
        help="upload the dashboards to Grafana (token from $GRAFANA_TOKEN)",
        description="Upload the generated dashboards into the Ripple folder of a running Grafana. "
        "The API token comes from $GRAFANA_TOKEN or the file named by $GRAFANA_TOKEN_FILE.",
    )
    p.add_argument("--url", required=True, help="Grafana base URL, e.g. http://127.0.0.1:3000")
    p.add_argument(
        "--prometheus-url",
        help="also create or update the Ripple Prometheus data source with this URL",
    )
    p.set_defaults(func=_push)
