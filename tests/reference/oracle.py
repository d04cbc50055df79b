"""Reference results of METRICS.md (revision 2) for a JSON Lines stream: offline, small and
slow on purpose.

Written from the spec alone (never from ``processors``), so that the processors' results can
be checked against it. The stream order is the file order: invalid lines are skipped
(``bounds.reason`` names why), ids are deduplicated, excluded authors are dropped, and a
window closes once the running maximum of event time reaches its end + lateness; an event
for a closed window counts nowhere in that window size.

    python -m tests.reference.oracle --config c.toml --input x.jsonl --out expected.jsonl

Decisions where EVENTS.md / METRICS.md r2 are silent (v1 ones are in the README):

- reason precedence: `too_large` (before parsing), then `invalid_json` (not UTF-8, not JSON,
  NaN/Infinity literals, not an object), then the fields and types of the kind, then the
  Bounds table in its order (`invalid_ts`, `future_ts`, `out_of_range` for ts, followers,
  value, `wrong_platform`, `invalid_url`, `invalid_session`); the first broken rule wins.
- `ts` or `ingested_at` absent, null, not a string or not the format -> `invalid_ts` (the
  lead's decision for `ingested_at`, kept symmetric for `ts`); seconds 60 and hour 24 are
  not valid times; the fraction may have any number of digits, times are truncated to
  milliseconds (the future bound too: `ts - ingested_at` of 300.0009 s is on time).
- `future_ts` when ts > ingested_at + max_future_seconds (exactly 5 minutes is valid).
  A ts far in the future with an ingested_at as far is valid and moves the largest event time.
- `out_of_range` literally: any non-null `followers` that is not a JSON integer in
  0..10^12 (also "12", true, 12.0, 1e3, -0); any conversion `value` that is present and
  not a finite number in 0..10^12 (also null, "3", 1e400); an absent value is 0.
- `wrong_platform`: the id must start with `<platform>:` exactly (case-sensitive); the
  native part may be empty. An empty id is `wrong_platform`.
- `invalid_url`: the url must start with `http://` or `https://` (scheme case-insensitive)
  followed by a non-empty host.
- `invalid_session`: IPv4-like is the full string `[0-9]{1,3}(.[0-9]{1,3}){3}`; IPv6 is
  whatever Python's `ipaddress.IPv6Address` parses (with `::ffff:1.2.3.4`, `%zone`);
  e-mail is `local@a.b[.c...]` with one `@`, non-empty local part and dot-separated
  non-empty labels. A 128-character session is valid.
- excluded authors: the author id on that platform (another platform's same id counts);
  their event's id is still remembered for deduplication ("after deduplication"); a
  target post of theirs is unknown, so engagements with it count only through the target
  author id. Web events have no author and are never excluded.
- sentiment: `lang` absent is null; only `text == ""` (or absent) is empty (" " is scored:
  neutral); `en_US` or `eng` are other languages (unrated).
- `top_posts` counts every engagement for b by its target id (`target` / `reply_to`),
  also when the target post never appears; ties and keys compare by code point.
- `top_authors` follower count = the largest seen among that author's mentions of b in
  the hour (null = 0), as `potential_reach` does.
- `top_links` counts a post once per distinct link after cutting at `#`; links of
  reshares are not links (reshares carry none).
- app referrer: scheme `android-app://` case-insensitive, package compared exactly
  (Android package names are case-sensitive), cut at the first `/`; an unknown package
  is not social (its "host" is no network domain).
- `paid_social_referrals`: a social referral (either step) whose lower-cased medium is in
  the list or starts with `paid` (so `cpc` counts where the referrer made it social).
- `social_conversion_value` is the correctly rounded sum (math.fsum) of the values, so it
  does not depend on the order events are added in; ints count as floats.
- alerts: a counted event = valid, first copy, author not excluded, on time for at least
  one window size; a platform's stall looks at counted events of every kind; "held back"
  only stops a drop from firing, a firing drop resolves by its own rule during a stall;
  a spike with B = 0 fires at x >= floor and stays firing until x < resolve * B can hold;
  every alert is evaluated from the first T with history to T-2h15m; x and B use the
  final 1m counts (events late for 1m are not in x); comparisons are exact (fractions,
  factors as the decimals written in the configuration); a series is not evaluated past
  a week and 15 minutes after its last count (x = B = 0 from there, nothing can change
  with positive floors) - a valid far-future event would otherwise mean years of minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import msgspec

from ingest.config import Config, load_config

from .alerts import all_alerts
from .bounds import MINUTE, SOCIAL_KINDS, check, decode, iso, parse_ts, reason
from .insight import SENTIMENTS, is_paid, link_key, ranked, scorer, sentiment
from .matching import Rules

__all__ = ["Rules", "check", "compute_results", "decode", "parse_ts", "read_stream", "reason"]

Row = dict[str, Any]
Labels = tuple[tuple[str, str], ...]

WINDOWS = {"1m": MINUTE, "1h": 60 * MINUTE}


def config_from_toml(text: str) -> Config:
    """The tracking config of a TOML text (no environment overrides)."""
    return msgspec.convert(tomllib.loads(text), Config)


# ---------------------------------------------------------------- the stream


@dataclass
class Accepted:
    """A valid, first-seen event that is on time for at least one window size."""

    ev: dict[str, Any]
    ts: int
    seen_max: int  # the running maximum of event time right after it arrived
    on_time: tuple[str, ...]  # window sizes it counts in


def window_start(ts: int, w: str) -> int:
    return ts - ts % WINDOWS[w]


def excluded(config: Config) -> dict[str, set[str]]:
    return {p: set(ids) for p, ids in config.filters.exclude_authors.items()}


def read_stream(
    lines: list[bytes], lateness_ms: int, config: Config
) -> tuple[list[Accepted], int | None]:
    """Accepted events in file order, and the largest event time of the stream."""
    drop = excluded(config)
    seen: set[str] = set()
    running: int | None = None
    out: list[Accepted] = []
    for line in lines:
        ev, _ = check(line, config)
        if ev is None:
            continue  # invalid: not remembered, does not move the running max
        if ev["kind"] in SOCIAL_KINDS and ev["author"]["id"] in drop.get(ev["platform"], ()):
            seen.add(ev["id"])  # dropped after deduplication, as if not in the stream
            continue
        ts = parse_ts(ev["ts"])
        assert ts is not None
        running = ts if running is None else max(running, ts)
        if ev["id"] in seen:
            continue
        seen.add(ev["id"])
        on_time = tuple(
            w for w in WINDOWS if window_start(ts, w) + WINDOWS[w] + lateness_ms > running
        )
        if on_time:
            out.append(Accepted(ev, ts, running, on_time))
    return out, running


class Counts:
    def __init__(self) -> None:
        self.n: dict[tuple[str, str, int, Labels], int] = defaultdict(int)
        # (window, start, brand/platform labels) -> author -> largest followers
        self.reach: dict[tuple[str, int, Labels], dict[str, int]] = defaultdict(dict)
        # 1h top lists: (start, brand/platform labels) -> key -> value
        self.top: dict[tuple[str, int, Labels], dict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self.values: dict[tuple[str, int, Labels], list[float]] = defaultdict(list)

    def add(self, metric: str, w: str, start: int, labels: Labels) -> None:
        self.n[(metric, w, start, labels)] += 1


def compute_results(lines: list[bytes], config: Config, lateness: int | None = None) -> list[Row]:
    """Every results-file row (last revision) plus the stream's alerts."""
    if lateness is None:
        lateness = config.processing.allowed_lateness_seconds
    lateness_ms = lateness * 1000
    attribution_ms = config.processing.session_attribution_seconds * 1000
    rules = Rules(config)
    score = scorer(config.sentiment.scorer)
    events, last_ts = read_stream(lines, lateness_ms, config)
    posts = {a.ev["id"]: a for a in events if a.ev["kind"] == "post"}
    sessions: dict[str, list[Accepted]] = defaultdict(list)
    for a in events:
        if a.ev["kind"] == "pageview":
            sessions[a.ev["session"]].append(a)

    def visible(target: Accepted, ts: int, w: str) -> bool:
        """Arrived, with an earlier event time, before the window of ``ts`` closed."""
        closes = window_start(ts, w) + WINDOWS[w] + lateness_ms
        return target.ts < ts and target.seen_max < closes

    def target_brands(
        ev: dict[str, Any], tid: str | None, tauthor: str | None, ts: int, w: str
    ) -> set[str]:
        """Brands the target mentioned or whose account wrote it."""
        p = ev["platform"]
        found = rules.authored(p, tauthor)
        t = posts.get(tid) if tid else None
        if t is not None and visible(t, ts, w):
            found |= rules.post_mentions(t.ev) | rules.authored(p, t.ev["author"]["id"])
        return found

    c = Counts()
    for a in events:
        ev, kind = a.ev, a.ev["kind"]
        for w in a.on_time:
            start = window_start(a.ts, w)
            if kind in SOCIAL_KINDS:
                _count_social(c, rules, ev, w, start, a.ts, target_brands, score)
            elif kind == "pageview":
                site = ev["site"]
                c.add("pageviews", w, start, (("site", site),))
                n = rules.social_referral(ev)
                if n is not None:
                    c.add("social_referrals", w, start, (("site", site), ("network", n)))
                    if is_paid(((ev.get("utm") or {}).get("medium") or "").lower()):
                        c.add("paid_social_referrals", w, start, (("site", site), ("network", n)))
            elif kind == "share_click":
                c.add("share_clicks", w, start, (("site", ev["site"]), ("network", ev["network"])))
                c.add("share_clicks_all", w, start, (("site", ev["site"]),))
            else:  # conversion: the session's earliest pageview in the 30 minutes before it
                pvs = [
                    pv
                    for pv in sessions.get(ev["session"], [])
                    if a.ts - attribution_ms <= pv.ts <= a.ts
                    and pv.seen_max < start + WINDOWS[w] + lateness_ms
                ]
                if pvs:
                    n = rules.social_referral(min(pvs, key=lambda pv: pv.ts).ev)
                    if n is not None:
                        labels = (("site", ev["site"]), ("network", n))
                        c.add("social_conversions", w, start, labels)
                        c.values[(w, start, labels)].append(ev.get("value", 0))
    rows = _smm_rows(c, rules) + _smo_rows(c) + _top_rows(c)
    if events and last_ts is not None:
        rows += all_alerts(
            config, _minute_series(c), _active_minutes(events), min(a.ts for a in events), last_ts
        )
    return sorted(rows, key=sort_key)


def _count_social(
    c: Counts,
    rules: Rules,
    ev: dict[str, Any],
    w: str,
    start: int,
    ts: int,
    target_brands: Any,
    score: Any,
) -> None:
    p, kind = ev["platform"], ev["kind"]
    author = ev["author"]
    own = rules.authored(p, author["id"])
    mentioned: set[str] = set()
    engaged: set[str] = set()
    target: str | None = None
    if kind == "post":
        mentioned = rules.post_mentions(ev)
        if ev.get("reply_to"):
            target = ev["reply_to"]
            engaged = target_brands(ev, target, ev.get("reply_to_author_id"), ts, w) - own
        for b in mentioned | own:
            c.add("amp_posts", w, start, _bp(b, p))
        label = sentiment(ev, score) if mentioned else None
        links = {link_key(u) for u in ev.get("links") or []}
        for b in mentioned:
            c.add("mentions_by_sentiment", w, start, (*_bp(b, p), ("sentiment", label or "")))
            if w == "1h":
                for link in links:
                    c.top[("top_links", start, _bp(b, p))][link] += 1
    else:
        target = ev["target"]
        engaged = target_brands(ev, target, ev.get("target_author_id"), ts, w) - own
        if kind == "reshare":
            mentioned = engaged
            for b in mentioned:
                c.add("amp_reshares", w, start, _bp(b, p))
    followers = author.get("followers") or 0
    for b in mentioned:
        c.add("mentions", w, start, _bp(b, p))
        authors = c.reach[(w, start, _bp(b, p))]
        authors[author["id"]] = max(authors.get(author["id"], 0), followers)
        if w == "1h":
            c.top[("top_authors", start, _bp(b, p))][author["id"]] += 1
    for b in engaged:
        c.add("engagements", w, start, _bp(b, p))
        if w == "1h" and target is not None:
            c.top[("top_posts", start, _bp(b, p))][target] += 1


def _bp(brand: str, platform: str) -> Labels:
    return (("brand", brand), ("platform", platform))


def row(metric: str, w: str, start: int, labels: Labels, value: float) -> Row:
    return {
        "metric": metric,
        "window": w,
        "window_start": iso(start),
        "window_end": iso(start + WINDOWS[w]),
        "labels": dict(labels),
        "value": value,
    }


def _smm_rows(c: Counts, rules: Rules) -> list[Row]:
    rows: list[Row] = []
    keys = {(w, s, lab) for (m, w, s, lab) in c.n if lab and lab[0][0] == "brand"}
    for w, s, lab in keys:
        if len(lab) != 2:
            continue  # per-sentiment label sets: below
        n = {
            m: c.n.get((m, w, s, lab), 0)
            for m in ("mentions", "engagements", "amp_posts", "amp_reshares")
        }
        authors = c.reach.get((w, s, lab), {})
        reach = sum(authors.values())
        for metric, value in (
            ("mentions", n["mentions"]),
            ("unique_authors", len(authors)),
            ("potential_reach", reach),
            ("engagements", n["engagements"]),
        ):
            if value:
                rows.append(row(metric, w, s, lab, value))
        if reach:
            rows.append(row("engagement_rate", w, s, lab, n["engagements"] / reach))
        if n["amp_posts"]:
            rows.append(row("amplification", w, s, lab, n["amp_reshares"] / n["amp_posts"]))
        by = {x: c.n.get(("mentions_by_sentiment", w, s, (*lab, ("sentiment", x))), 0) for x in SENTIMENTS}  # fmt: skip
        for x, v in by.items():
            if v:
                rows.append(row("mentions_by_sentiment", w, s, (*lab, ("sentiment", x)), v))
        if by["positive"] + by["negative"]:
            net = (by["positive"] - by["negative"]) / (by["positive"] + by["negative"])
            rows.append(row("net_sentiment", w, s, lab, net))
    # share of voice: every configured brand, where the platform has any mention in the window
    totals: dict[tuple[str, int, str], int] = defaultdict(int)
    for (m, w, s, lab), v in c.n.items():
        if m == "mentions":
            totals[(w, s, lab[1][1])] += v
    for (w, s, p), total in totals.items():
        for b in rules.brands:
            share = c.n.get(("mentions", w, s, _bp(b, p)), 0) / total
            rows.append(row("share_of_voice", w, s, _bp(b, p), share))
    return rows


def _smo_rows(c: Counts) -> list[Row]:
    rows: list[Row] = []
    for (m, w, s, lab), v in list(c.n.items()):
        if m in ("pageviews", "social_referrals", "share_clicks", "social_conversions",
                 "paid_social_referrals"):  # fmt: skip
            rows.append(row(m, w, s, lab, v))
        if m == "pageviews":
            rows.append(
                row("share_rate", w, s, lab, c.n.get(("share_clicks_all", w, s, lab), 0) / v)
            )
        if m == "share_clicks" and w == "1h":
            rows.append(
                row("referral_yield", w, s, lab, c.n.get(("social_referrals", w, s, lab), 0) / v)
            )
        if m == "social_referrals":
            conv = c.n.get(("social_conversions", w, s, lab), 0)
            rows.append(row("social_conversion_rate", w, s, lab, conv / v))
        if m == "social_conversions":
            value = math.fsum(c.values[(w, s, lab)])
            rows.append(row("social_conversion_value", w, s, lab, float(value)))
    return rows


_TOP_LABEL = {"top_posts": "post", "top_authors": "author", "top_links": "link"}


def _top_rows(c: Counts) -> list[Row]:
    rows: list[Row] = []
    for (metric, s, lab), values in c.top.items():
        followers = c.reach[("1h", s, lab)] if metric == "top_authors" else None
        for rank, key, value in ranked(values, followers):
            labels = (*lab, ("rank", rank), (_TOP_LABEL[metric], key))
            rows.append(row(metric, "1h", s, labels, value))
    return rows


# ---------------------------------------------------------------- alert series


def _minute_series(c: Counts) -> dict[str, dict[Labels, dict[int, int]]]:
    """Final 1m counts per alert series: metric -> labels -> minute start -> count."""
    out: dict[str, dict[Labels, dict[int, int]]] = defaultdict(lambda: defaultdict(dict))
    for (m, w, s, lab), v in c.n.items():
        if w != "1m":
            continue
        if m in ("engagements", "mentions", "social_referrals"):
            out[m][lab][s] = v
        elif m == "mentions_by_sentiment" and lab[2] == ("sentiment", "negative"):
            out["negative_mentions"][lab[:2]][s] = v
    return out


def _active_minutes(events: list[Accepted]) -> dict[str, set[int]]:
    """Per platform, the minutes holding any counted event (of any kind)."""
    out: dict[str, set[int]] = defaultdict(set)
    for a in events:
        out[a.ev["platform"]].add(window_start(a.ts, "1m"))
    return out


def sort_key(r: Row) -> tuple[str, str, str, str]:
    return (r["window_start"], r["window"], r["metric"], json.dumps(r["labels"], sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lateness", type=int, help="allowed lateness, seconds (default: config)")
    args = ap.parse_args(argv)
    config = load_config(args.config, env={})
    with open(args.input, "rb") as f:
        lines = f.read().splitlines()
    rows = compute_results(lines, config, args.lateness)
    with open(args.out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
    print(f"{len(rows)} rows from {len(lines)} lines -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
