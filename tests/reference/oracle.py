"""Reference results of METRICS.md for a JSON Lines stream: offline, small and slow on purpose.

Written from the spec alone (never from ``processors``), so that the processors' results can
be checked against it. The stream order is the file order: invalid lines are skipped, ids
are deduplicated, and a window closes once the running maximum of event time reaches its
end + lateness; an event for a closed window counts nowhere in that window size.

    python -m tests.reference.oracle --config c.toml --input x.jsonl --out expected.jsonl
"""

from __future__ import annotations

import argparse
import json
import re
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec

from ingest.config import Config, load_config

Row = dict[str, Any]
Labels = tuple[tuple[str, str], ...]

MINUTE = 60_000  # all times are integer milliseconds: exact window and 30-minute edges
WINDOWS = {"1m": MINUTE, "1h": 60 * MINUTE}
QUARTER = 15 * MINUTE
WEEK = 7 * 24 * 60 * MINUTE


def config_from_toml(text: str) -> Config:
    """The tracking config of a TOML text (no environment overrides)."""
    return msgspec.convert(tomllib.loads(text), Config)


# ---------------------------------------------------------------- validation (EVENTS.md)

PLATFORMS = {"bluesky", "mastodon", "reddit", "hackernews", "x", "youtube", "rss", "web"}
SOCIAL_KINDS = {"post", "reshare", "reaction"}
KINDS = SOCIAL_KINDS | {"pageview", "share_click", "conversion"}
SHARE_NETWORKS = {
    "facebook", "x", "linkedin", "bluesky", "mastodon", "reddit", "whatsapp",
    "telegram", "pinterest", "email", "copy_link", "other",
}  # fmt: skip
_TS = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)


def parse_ts(value: str) -> int | None:
    """RFC 3339 date-time -> unix milliseconds, or None."""
    m = _TS.fullmatch(value)
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, off = m.groups()
    try:
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=UTC)
    except ValueError:
        return None
    ms = int(dt.timestamp()) * 1000 + (int((frac[1:] + "00")[:3]) if frac else 0)
    if off not in ("Z", "z"):
        ms -= (1 if off[0] == "+" else -1) * (int(off[1:3]) * 60 + int(off[4:6])) * MINUTE
    return ms


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _nonempty(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _opt_str(d: dict[str, Any], key: str) -> bool:
    return d.get(key) is None or _str(d[key])


def _absent_or(d: dict[str, Any], key: str, check: Any) -> bool:
    return key not in d or check(d[key])


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and all(_str(x) for x in v)


def _author_ok(a: Any) -> bool:
    return (
        isinstance(a, dict)
        and _nonempty(a.get("id"))
        and _opt_str(a, "handle")
        and (a.get("followers") is None or (_int(a["followers"]) and a["followers"] >= 0))
    )


def _utm_ok(u: Any) -> bool:
    return u is None or (isinstance(u, dict) and all(_opt_str(u, k) for k in u))


def _kind_ok(d: dict[str, Any]) -> bool:
    kind = d["kind"]
    if kind in SOCIAL_KINDS and not _author_ok(d.get("author")):
        return False
    if kind == "post":
        return (
            _absent_or(d, "text", _str)
            and _absent_or(d, "hashtags", _str_list)
            and _absent_or(d, "links", _str_list)
            and all(
                _opt_str(d, k)
                for k in (
                    "url",
                    "lang",
                    "reply_to",
                    "reply_to_author_id",
                    "quote_of",
                    "quote_of_author_id",
                )
            )
        )
    if kind in ("reshare", "reaction"):
        return (
            _nonempty(d.get("target"))
            and _opt_str(d, "target_author_id")
            and _opt_str(d, "target_url")
            and _absent_or(d, "reaction", _str)
        )
    if not (_nonempty(d.get("site")) and _str(d.get("url")) and _nonempty(d.get("session"))):
        return False
    if kind == "pageview":
        return _opt_str(d, "referrer") and _utm_ok(d.get("utm"))
    if kind == "share_click":
        return d.get("network") in SHARE_NETWORKS
    # conversion
    return _str(d.get("goal")) and _absent_or(
        d, "value", lambda v: isinstance(v, int | float) and not isinstance(v, bool)
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def decode(line: bytes, max_bytes: int = 65536) -> dict[str, Any] | None:
    """The event of one line, or None when the line breaks EVENTS.md."""
    if len(line) > max_bytes:
        return None
    try:
        d = json.loads(line, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(d, dict):
        return None
    ok = (
        _int(d.get("v"))
        and d["v"] == 1
        and _nonempty(d.get("id"))
        and d.get("kind") in KINDS
        and d.get("platform") in PLATFORMS
        and _str(d.get("ts"))
        and parse_ts(d["ts"]) is not None
        and _opt_str(d, "ingested_at")
        and _kind_ok(d)
    )
    return d if ok else None


# ---------------------------------------------------------------- matching

NETWORK_DOMAINS: dict[str, tuple[str, ...]] = {
    "facebook": ("facebook.com", "fb.com", "fb.me"),
    "instagram": ("instagram.com",),
    "threads": ("threads.net", "threads.com"),
    "x": ("x.com", "twitter.com", "t.co"),
    "linkedin": ("linkedin.com", "lnkd.in"),
    "reddit": ("reddit.com", "redd.it"),
    "bluesky": ("bsky.app", "go.bsky.app"),
    "mastodon": ("mastodon.social", "mastodon.online"),
    "youtube": ("youtube.com", "youtu.be"),
    "pinterest": ("pinterest.com",),
    "tiktok": ("tiktok.com",),
    "tumblr": ("tumblr.com",),
    "hackernews": ("news.ycombinator.com",),
    "whatsapp": ("whatsapp.com", "wa.me"),
    "telegram": ("t.me", "telegram.me", "telegram.org"),
    # a few of GA4's other social sources
    "other_social": ("quora.com", "vk.com", "weibo.com", "flickr.com", "goodreads.com"),
}
UTM_SOURCES = {
    "facebook": "facebook", "fb": "facebook", "ig": "instagram", "instagram": "instagram",
    "threads": "threads", "x": "x", "twitter": "x", "t.co": "x", "linkedin": "linkedin",
    "lnkd.in": "linkedin", "reddit": "reddit", "bluesky": "bluesky", "bsky": "bluesky",
    "mastodon": "mastodon", "youtube": "youtube", "pinterest": "pinterest", "tiktok": "tiktok",
    "hackernews": "hackernews", "hn": "hackernews", "whatsapp": "whatsapp", "telegram": "telegram",
}  # fmt: skip
SOCIAL_MEDIUMS = {
    "social", "social-network", "social-media", "sm", "social network", "social media",
    "paid_social", "paid-social", "paidsocial",
}  # fmt: skip


def host_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.rstrip(".") if host else None


def under(host: str, domains: Any) -> bool:
    """``host`` is one of ``domains`` or a subdomain of one."""
    return any(host == d or host.endswith("." + d) for d in domains)


def strip_www(host: str) -> str:
    return host[4:] if host.startswith("www.") else host


class Rules:
    """The tracking configuration, ready to match events."""

    def __init__(self, config: Config) -> None:
        self.brands = [b.name for b in config.brands]
        self.terms: dict[str, re.Pattern[str] | None] = {}
        self.hashtags = {b.name: {h.lower() for h in b.hashtags} for b in config.brands}
        self.domains = {b.name: [d.lower() for d in b.domains] for b in config.brands}
        self.accounts = {
            b.name: {p: set(ids) for p, ids in b.accounts.items()} for b in config.brands
        }
        for b in config.brands:
            # a phrase matches across any whitespace; \w decides the word boundaries
            alts = [r"\s+".join(map(re.escape, t.split())) for t in b.terms if t.strip()]
            self.terms[b.name] = (
                re.compile(r"(?<!\w)(?:" + "|".join(alts) + r")(?!\w)", re.IGNORECASE)
                if alts
                else None
            )
        self.sites = {s.name: [d.lower() for d in s.domains] for s in config.sites}
        self.networks = {n: list(ds) for n, ds in NETWORK_DOMAINS.items()}
        for n, extra in config.networks.extra_domains.items():
            self.networks.setdefault(n, []).extend(d.lower() for d in extra)

    def authored(self, platform: str, author_id: str | None) -> set[str]:
        """Brands that own the account ``author_id`` on ``platform``."""
        if author_id is None:
            return set()
        return {b for b in self.brands if author_id in self.accounts[b].get(platform, ())}

    def post_mentions(self, post: dict[str, Any]) -> set[str]:
        p = post["platform"]
        text = post.get("text") or ""
        tags = {h.lower() for h in post.get("hashtags") or []}
        hosts = [h for h in map(host_of, post.get("links") or []) if h]
        refs = self.authored(p, post.get("reply_to_author_id")) | self.authored(
            p, post.get("quote_of_author_id")
        )
        found = set()
        for b in self.brands:
            term = self.terms[b]
            if (
                (term is not None and term.search(text))
                or tags & self.hashtags[b]
                or any(under(h, self.domains[b]) for h in hosts)
                or b in refs
            ):
                found.add(b)
        return found - self.authored(p, post["author"]["id"])  # own activity

    def network_of(self, host: str) -> str | None:
        for n, domains in self.networks.items():
            if under(host, domains):
                return n
        return None

    def social_referral(self, pv: dict[str, Any]) -> str | None:
        """The network a pageview is a social referral from, or None."""
        ref = host_of(pv.get("referrer"))
        own = self.sites.get(pv["site"], [])
        if ref is not None and (under(ref, own) or under(strip_www(ref), own)):
            return None
        utm = pv.get("utm") or {}
        source = (utm.get("source") or "").lower()
        medium = (utm.get("medium") or "").lower()
        if source:
            n = UTM_SOURCES.get(source) or self.network_of(source)
            if n is not None and (medium == "" or medium in SOCIAL_MEDIUMS):
                return n
        return self.network_of(strip_www(ref)) if ref is not None else None


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


def read_stream(
    lines: list[bytes], lateness_ms: int, max_bytes: int
) -> tuple[list[Accepted], int | None]:
    """Accepted events in file order, and the largest event time of the stream."""
    seen: set[str] = set()
    running: int | None = None
    out: list[Accepted] = []
    for line in lines:
        ev = decode(line, max_bytes)
        if ev is None:
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

    def add(self, metric: str, w: str, start: int, labels: Labels) -> None:
        self.n[(metric, w, start, labels)] += 1


def compute_results(lines: list[bytes], config: Config, lateness: int = 600) -> list[Row]:
    """Every results-file row (last revision) plus the stream's EngagementDrop alerts."""
    lateness_ms = lateness * 1000
    attribution_ms = config.processing.session_attribution_seconds * 1000
    rules = Rules(config)
    events, last_ts = read_stream(lines, lateness_ms, config.kafka.max_event_bytes)
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
                _count_social(c, rules, ev, w, start, a.ts, target_brands)
            elif kind == "pageview":
                c.add("pageviews", w, start, (("site", ev["site"]),))
                n = rules.social_referral(ev)
                if n is not None:
                    c.add("social_referrals", w, start, (("site", ev["site"]), ("network", n)))
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
    rows = _smm_rows(c, rules) + _smo_rows(c)
    if events and last_ts is not None:
        rows += engagement_drop_alerts(
            _minute_engagements(c), _active_minutes(events), min(a.ts for a in events), last_ts
        )
    return sorted(rows, key=sort_key)


def _count_social(
    c: Counts, rules: Rules, ev: dict[str, Any], w: str, start: int, ts: int, target_brands: Any
) -> None:
    p, kind = ev["platform"], ev["kind"]
    author = ev["author"]
    own = rules.authored(p, author["id"])
    mentioned: set[str] = set()
    engaged: set[str] = set()
    if kind == "post":
        mentioned = rules.post_mentions(ev)
        if ev.get("reply_to"):
            engaged = target_brands(ev, ev["reply_to"], ev.get("reply_to_author_id"), ts, w) - own
        for b in mentioned | own:
            c.add("amp_posts", w, start, _bp(b, p))
    else:
        engaged = target_brands(ev, ev["target"], ev.get("target_author_id"), ts, w) - own
        if kind == "reshare":
            mentioned = engaged
            for b in mentioned:
                c.add("amp_reshares", w, start, _bp(b, p))
    for b in mentioned:
        c.add("mentions", w, start, _bp(b, p))
        authors = c.reach[(w, start, _bp(b, p))]
        authors[author["id"]] = max(authors.get(author["id"], 0), author.get("followers") or 0)
    for b in engaged:
        c.add("engagements", w, start, _bp(b, p))


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
        if m in ("pageviews", "social_referrals", "share_clicks", "social_conversions"):
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
    return rows


# ---------------------------------------------------------------- EngagementDrop


def _minute_engagements(c: Counts) -> dict[tuple[str, str], dict[int, int]]:
    out: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for (m, w, s, lab), v in c.n.items():
        if m == "engagements" and w == "1m":
            out[(lab[0][1], lab[1][1])][s] = v
    return out


def _active_minutes(events: list[Accepted]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = defaultdict(set)
    for a in events:
        if a.ev["kind"] in SOCIAL_KINDS:
            out[a.ev["platform"]].add(window_start(a.ts, "1m"))
    return out


def engagement_drop_alerts(
    engagements: dict[tuple[str, str], dict[int, int]],
    active: dict[str, set[int]],
    first_ts: int,
    last_ts: int,
) -> list[Row]:
    """Fire/resolve rows per (brand, platform), evaluated at each minute boundary T.

    ``engagements[(brand, platform)][minute start]`` are the final 1m counts; ``active``
    holds, per platform, the minutes with any accepted social event (else it has stalled).
    """
    rows: list[Row] = []
    first_t = -(-(first_ts + 9 * QUARTER) // MINUTE) * MINUTE  # history reaches T-2h15m
    last_t = last_ts - last_ts % MINUTE
    for (brand, platform), per_minute in sorted(engagements.items()):
        if not any(per_minute.values()):
            continue

        def total(lo: int, hi: int, counts: dict[int, int] = per_minute) -> int:
            return sum(v for m, v in counts.items() if lo <= m < hi)

        firing = False
        for t in range(first_t, last_t + 1, MINUTE):
            current = total(t - QUARTER, t)
            if first_ts <= t - WEEK - QUARTER:
                baseline = float(total(t - WEEK - QUARTER, t - WEEK))
            else:
                baseline = total(t - 9 * QUARTER, t - QUARTER) / 8
            stalled = not any(t - QUARTER <= m < t for m in active.get(platform, ()))
            if not firing and baseline >= 20 and current < 0.5 * baseline and not stalled:
                firing, value = True, 1
            elif firing and baseline > 0 and current / baseline > 0.8:
                firing, value = False, 0
            else:
                continue
            labels = {"alertname": "EngagementDrop", "brand": brand, "platform": platform}
            rows.append(
                {"metric": "alert", "window": "event", "window_start": iso(t),
                 "window_end": iso(t), "labels": labels, "value": value}
            )  # fmt: skip
    return rows


def sort_key(r: Row) -> tuple[str, str, str, str]:
    return (r["window_start"], r["window"], r["metric"], json.dumps(r["labels"], sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lateness", type=int, help="allowed lateness, seconds (default: config)")
    args = ap.parse_args(argv)
    config = load_config(args.config, env={})
    with open(args.input, "rb") as f:
        lines = f.read().splitlines()
    lateness = (
        args.lateness if args.lateness is not None else config.processing.allowed_lateness_seconds
    )
    rows = compute_results(lines, config, lateness)
    with open(args.out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
    print(f"{len(rows)} rows from {len(lines)} lines -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
