"""A deterministic, realistic synthetic history: social mentions and engagements for three
brands (one a competitor) on four platforms, and a website's pageviews, social referrals,
share clicks and conversions — with an engagement drop, and a spike of angry mentions of a
competitor (MentionSpike and NegativeSentimentSpike). Used by the demo and benchmarks.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from ingest.events import format_ts

# The demo's tracking rules (brands, campaign, site): the file `ripple demo` runs with.
DEMO_TOML = Path(__file__).with_name("demo.toml")
DEMO_CONFIG = DEMO_TOML.read_text(encoding="utf-8")

PLATFORMS = ("bluesky", "mastodon", "x", "reddit")
BRAND_WEIGHTS = (("acme", 0.5), ("globex", 0.3), ("initech", 0.2))
REFERRERS = (
    ("https://t.co/abc", None), ("https://bsky.app/profile/a/post/1", None),
    ("https://l.facebook.com/l.php", None), ("https://www.reddit.com/r/shoes/", None),
    ("https://www.google.com/", None), (None, ("bsky", "social")), (None, ("newsletter", "email")),
    ("https://news.ycombinator.com/item?id=1", None), (None, None),
    # paid social (utm_medium), and app referrers (METRICS.md r2)
    ("https://l.facebook.com/l.php", ("facebook", "paid_social")),
    ("https://t.co/ad", ("twitter", "cpc")), ("android-app://com.twitter.android", None),
    ("android-app://com.linkedin.android/", None),
)  # fmt: skip
ANGRY = ("{b} is down again, awful support", "{b} support is terrible", "worst update ever, {b}")
CAMPAIGN_BRAND, CAMPAIGN_HASHTAG = "acme", "acmeblackfriday"  # campaign bf2026 of demo.toml
RECENT_POSTS = 1000  # engagements target one of the newest posts of their platform
SHARE_NETWORKS = ("x", "facebook", "bluesky", "linkedin", "email", "copy_link")


@dataclass
class HistorySpec:
    start: float = 1_763_625_600.0  # 2025-11-20T08:00:00Z
    hours: float = 4.0
    social_per_minute: float = 60.0
    web_per_minute: float = 40.0
    drop_brand: str | None = "acme"
    drop_platform: str = "bluesky"
    drop_at_hours: float = 3.0  # engagement for the drop pair falls to 10% from here on
    seed: int = 7
    # Prepended to the native part of every id: histories generated for different runs (the
    # demo's, one per start time) must not share ids, or the processors drop them as duplicates.
    id_prefix: str = ""
    campaign_share: float = 0.1  # share of acme's posts that carry the campaign's hashtag
    # A burst of angry posts about one brand on one platform: (brand, platform, start hours,
    # minutes, extra posts a minute). None: no spike.
    spike: tuple[str, str, float, int, int] | None = ("globex", "mastodon", 2.0, 20, 12)


def _line(ev: dict[str, object]) -> bytes:
    return orjson.dumps(ev)


def generate(spec: HistorySpec) -> Iterator[bytes]:
    """Canonical events in event-time order (JSON Lines without newlines)."""
    rnd = random.Random(spec.seed)
    n_minutes = int(spec.hours * 60)
    posts: dict[str, list[tuple[str, str]]] = {p: [] for p in PLATFORMS}  # recent (id, author)
    seq = 0
    brands = [b for b, _ in BRAND_WEIGHTS]
    weights = [w for _, w in BRAND_WEIGHTS]
    for minute in range(n_minutes):
        t0 = spec.start + minute * 60
        n_social = rnd.randint(int(spec.social_per_minute * 0.8), int(spec.social_per_minute * 1.2))
        n_web = rnd.randint(int(spec.web_per_minute * 0.8), int(spec.web_per_minute * 1.2))
        batch: list[tuple[float, bytes]] = []
        if spec.spike is not None:
            sb, sp, s_at, s_minutes, s_extra = spec.spike
            if s_at * 60 <= minute < s_at * 60 + s_minutes:
                for _ in range(s_extra):
                    seq += 1
                    ts = t0 + rnd.random() * 60
                    author = f"{sp}-angry{rnd.randint(1, 400)}"
                    pid = f"{sp}:{spec.id_prefix}x{seq}"
                    ev = {"v": 1, "platform": sp, "ts": format_ts(ts),
                          "ingested_at": format_ts(ts + 0.4), "id": pid, "kind": "post",
                          "author": {"id": author, "handle": author, "followers": rnd.randint(0, 900)},
                          "text": rnd.choice(ANGRY).format(b=sb.title()), "url": None,
                          "lang": "en", "hashtags": [], "links": [], "reply_to": None,
                          "quote_of": None}  # fmt: skip
                    batch.append((ts, _line(ev)))
        for _ in range(n_social):
            seq += 1
            ts = t0 + rnd.random() * 60
            platform = rnd.choice(PLATFORMS)
            brand = rnd.choices(brands, weights)[0]
            author = f"{platform}-u{rnd.randint(1, 5000)}"
            base = {
                "v": 1,
                "platform": platform,
                "ts": format_ts(ts),
                "ingested_at": format_ts(ts + 0.4),
            }
            roll = rnd.random()
            recent = posts[platform]
            if roll < 0.45 or not recent:
                pid = f"{platform}:{spec.id_prefix}p{seq}"
                text = rnd.choice(
                    [
                        f"Loving {brand.title()}!",
                        f"#{brand} is great",
                        f"meh, {brand}",
                        f"check {brand}.com",
                    ]
                )
                hashtags = [brand] if "#" in text else []
                if brand == CAMPAIGN_BRAND and rnd.random() < spec.campaign_share:
                    text += f" #{CAMPAIGN_HASHTAG}"
                    hashtags.append(CAMPAIGN_HASHTAG)
                ev = {**base, "id": pid, "kind": "post",
                      "author": {"id": author, "handle": author, "followers": rnd.randint(0, 20000)},
                      "text": text, "url": None, "lang": "en", "hashtags": hashtags,
                      "links": [f"https://{brand}.com/p/{seq}"] if ".com" in text else [],
                      "reply_to": None, "quote_of": None}  # fmt: skip
                recent.append((pid, brand))
                if len(recent) > RECENT_POSTS:
                    recent.pop(0)
            else:
                target, tbrand = rnd.choice(recent)
                # Only engagement with the drop brand's posts drops, not the platform's.
                in_drop = (
                    tbrand == spec.drop_brand
                    and platform == spec.drop_platform
                    and minute >= spec.drop_at_hours * 60
                )
                if in_drop and rnd.random() < 0.9:
                    continue  # the engagement drop
                kind = "reaction" if roll < 0.8 else "reshare"
                ev = {**base, "id": f"{platform}:{spec.id_prefix}{kind[0]}{seq}", "kind": kind,
                      "author": {"id": author, "handle": author, "followers": rnd.randint(0, 5000)},
                      "target": target, "target_author_id": None}  # fmt: skip
                if kind == "reaction":
                    ev["reaction"] = "like"
            batch.append((ts, _line(ev)))
        for _ in range(n_web):
            seq += 1
            ts = t0 + rnd.random() * 60
            session = f"s{rnd.randint(1, 3000)}-{minute // 20}"
            roll = rnd.random()
            base = {"v": 1, "platform": "web", "ts": format_ts(ts), "ingested_at": format_ts(ts + 0.1),
                    "id": f"web:{spec.id_prefix}{seq}", "site": "acme.com", "session": session}  # fmt: skip
            if roll < 0.8:
                ref, utm = rnd.choice(REFERRERS)
                ev = {**base, "kind": "pageview", "url": "https://acme.com/p/1", "referrer": ref,
                      "utm": {"source": utm[0], "medium": utm[1], "campaign": "bf2026" if rnd.random() < 0.2 else None,
                              "content": None, "term": None} if utm else None}  # fmt: skip
            elif roll < 0.93:
                ev = {
                    **base,
                    "kind": "share_click",
                    "url": "https://acme.com/p/1",
                    "network": rnd.choice(SHARE_NETWORKS),
                }
            else:
                ev = {**base, "kind": "conversion", "url": "https://acme.com/buy", "goal": "purchase",
                      "value": round(rnd.uniform(10, 200), 2)}  # fmt: skip
            batch.append((ts, _line(ev)))
        batch.sort(key=lambda x: x[0])
        for _, line in batch:
            yield line
