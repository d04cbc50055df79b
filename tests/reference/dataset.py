"""A deterministic synthetic stream (about 3.5 hours) and its tracking config, covering every
rule of METRICS.md: matching edge cases, own activity, targets out of order, duplicates,
late and invalid records, SMO attribution, an engagement drop that fires and resolves and a
platform stall that must not fire.

    config_toml, lines = generate(seed=10)

The stream order is the list order. Lateness margins are kept wide (minutes), so that a
consumer reading several partitions sees the same on-time/late split. With the default
seed no EngagementDrop evaluation lands exactly on a threshold.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .oracle import Rules, config_from_toml, parse_ts

CONFIG_TOML = """\
[[brands]]
name = "acme"
terms = ["acme", "acme shoes"]
hashtags = ["acmeshoes"]
domains = ["acme.com"]
competitor = false
[brands.accounts]
bluesky = ["did:plc:acme"]
mastodon = ["109000001"]
x = ["1001"]
reddit = ["t2_acme"]

[[brands]]
name = "globex"
terms = ["globex", "globex corp"]
hashtags = ["globexlife"]
domains = ["globex.io"]
competitor = false
[brands.accounts]
bluesky = ["did:plc:globex"]
x = ["2001"]
reddit = ["t2_globex"]

[[brands]]
name = "initech"
terms = ["initech", "tps reports"]
hashtags = ["initech"]
domains = ["initech.example"]
competitor = true
[brands.accounts]
x = ["3001"]
hackernews = ["initech"]

[[campaigns]]
name = "bf2026"
brand = "acme"
hashtags = ["acmeblackfriday"]
terms = ["black friday"]
utm_campaign = ["bf2026"]

[[sites]]
name = "acme.com"
domains = ["acme.com", "www.acme.com"]

[[sites]]
name = "globex.io"
domains = ["globex.io"]

[networks.extra_domains]
mastodon = ["fosstodon.org"]
"""

MIN = 60_000
START = parse_ts("2026-11-20T08:00:00Z") or 0
MINUTES = 210
PLATFORMS = ("bluesky", "mastodon", "x", "reddit", "hackernews")
POST_RATE = {"bluesky": 2.5, "mastodon": 1.5, "x": 2.0, "reddit": 0.8, "hackernews": 0.4}
GENERIC_ENGAGEMENT_RATE = {
    "bluesky": 2.0,
    "mastodon": 1.0,
    "x": 1.5,
    "reddit": 0.8,
    "hackernews": 0.3,
}
STALL = (START + 140 * MIN, START + 160 * MIN)  # mastodon sends nothing in [10:20, 10:40)
DROP = (START + 165 * MIN, START + 185 * MIN)  # acme/bluesky engagements collapse [10:45, 11:05)

TEXTS = {
    "acme": [
        "Just got my Acme! order", "#acme all the way", "ACME shoes are comfy",
        "acme\nshoes, again", "Is acme's support open today?", "(acme) delivered early",
    ],
    "globex": ["Globex Corp keeps growing", "globex-corp merger news", "GLOBEX. That's it."],
    "initech": ["Another day of TPS reports", "tps\treports at work", "INITECH printer jammed"],
    "both": ["acme vs globex, thoughts?", "Acme shoes, Globex socks"],
    "none": [
        "Nice weather today", "Anyone watching the game?", "acmegrowth is a different startup",
        "follow @acme_fan for memes", "globexian literature", "tpsreports123 nope",
        "pacme and xacme are not brands", "",
    ],
}  # fmt: skip
LINKS = [
    ["https://shop.acme.com/sale"], ["https://acme.com/p/1"], ["https://notacme.com/"],
    ["https://acme.com.evil.example/x"], ["https://blog.globex.io/p"],
    ["http://initech.example:8080/tps"], ["https://example.org/a"],
]  # fmt: skip
TAGS = [["acmeshoes"], ["AcmeShoes"], ["acmegrowth"], ["globexlife"], ["initech"], ["weather"]]

SOCIAL_REFERRERS = [
    "https://t.co/abc", "https://x.com/a/status/1", "https://www.facebook.com/",
    "https://l.facebook.com/l.php?u=x", "https://m.facebook.com/story", "https://bsky.app/profile/a",
    "https://go.bsky.app/x", "https://news.ycombinator.com/item?id=1", "https://www.reddit.com/r/x",
    "https://old.reddit.com/r/y", "https://www.linkedin.com/feed", "https://lnkd.in/abc",
    "https://fosstodon.org/@a", "https://mastodon.social/@b", "https://www.instagram.com/",
    "https://l.instagram.com/", "https://www.threads.net/@a", "https://www.youtube.com/watch?v=1",
    "https://www.tiktok.com/@a", "https://www.pinterest.com/pin/1", "https://www.tumblr.com/a",
    "https://web.whatsapp.com/", "https://t.me/chan", "https://www.quora.com/q", "https://vk.com/a",
]  # fmt: skip
OTHER_REFERRERS = [
    "https://www.google.com/search?q=acme",
    "https://duckduckgo.com/",
    "https://news.example.org/a",
]
UTM_SOCIAL = [
    ("facebook", "social"), ("fb", None), ("ig", "paid_social"), ("x", "social"), ("twitter", "sm"),
    ("bsky", None), ("bluesky", "social media"), ("hn", "social-network"), ("linkedin", "paid-social"),
    ("reddit", "paidsocial"), ("mastodon", "social"), ("whatsapp", None), ("telegram", "social-media"),
    ("news.ycombinator.com", "social"), ("t.co", None), ("threads", "social network"), ("tiktok", "social"),
]  # fmt: skip
SHARE_NETWORKS = [
    "facebook", "x", "linkedin", "bluesky", "mastodon", "reddit", "whatsapp",
    "telegram", "pinterest", "email", "copy_link", "other",
]  # fmt: skip


def ts_str(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"
    )


@dataclass
class Item:
    data: dict[str, Any] | bytes  # bytes: an invalid line, sent as is
    arrival: float  # position in the stream, in event-time milliseconds
    ts: int
    late_ok: bool = False  # may be moved behind the running max without touching other rules


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.rules = Rules(config_from_toml(CONFIG_TOML))
        self.items: list[Item] = []
        self.n = 0
        self.users = {
            p: [
                (
                    f"{p}-u{i}",
                    None if self.rng.random() < 0.1 else int(self.rng.lognormvariate(5, 1.5)),
                )
                for i in range(150)
            ]
            for p in PLATFORMS
        }
        self.accounts: dict[tuple[str, str], str] = {
            ("acme", "bluesky"): "did:plc:acme", ("acme", "mastodon"): "109000001",
            ("acme", "x"): "1001", ("acme", "reddit"): "t2_acme", ("globex", "bluesky"): "did:plc:globex",
            ("globex", "x"): "2001", ("globex", "reddit"): "t2_globex", ("initech", "x"): "3001",
            ("initech", "hackernews"): "initech",
        }  # fmt: skip
        # posts that engagements may target: (ts, id, author id, acme-related)
        self.pool: dict[str, list[tuple[int, str, str, bool]]] = {p: [] for p in PLATFORMS}

    # ------------------------------------------------------------ building blocks

    def next_id(self, platform: str, prefix: str) -> str:
        self.n += 1
        return f"{platform}:{prefix}{self.n}"

    def emit(
        self, ev: dict[str, Any], ts: int, arrival: float | None = None, late_ok: bool = False
    ) -> None:
        ev["ts"] = ts_str(ts)
        ev["ingested_at"] = ts_str(ts + 2000)
        if arrival is None:
            arrival = ts + self.rng.uniform(0, 20_000)
        self.items.append(Item(ev, arrival, ts, late_ok))

    def author(self, platform: str, user: tuple[str, int | None] | None = None) -> dict[str, Any]:
        uid, followers = user or self.rng.choice(self.users[platform])
        if followers is not None:
            followers += self.rng.choice([0, 0, 0, 1, 7])  # the largest seen in a window counts
        return {"id": uid, "handle": uid + ".example", "followers": followers}

    def post(
        self, platform: str, author: dict[str, Any] | None = None, **fields: Any
    ) -> dict[str, Any]:
        ev: dict[str, Any] = {
            "v": 1, "id": self.next_id(platform, "p"), "kind": "post", "platform": platform,
            "author": author or self.author(platform), "text": "", "url": None, "lang": "en",
            "hashtags": [], "links": [], "reply_to": None, "reply_to_author_id": None,
            "quote_of": None, "quote_of_author_id": None,
        }  # fmt: skip
        ev.update(fields)
        return ev

    def random_content(self) -> dict[str, Any]:
        r = self.rng.random()
        if r < 0.55:
            cls = self.rng.choices(
                ["none", "acme", "globex", "initech", "both"], [45, 18, 12, 10, 3]
            )[0]
            return {"text": self.rng.choice(TEXTS[cls])}
        if r < 0.8:
            return {"text": "new kicks", "hashtags": self.rng.choice(TAGS)}
        return {"text": "look", "links": self.rng.choice(LINKS)}

    def acme_related(self, ev: dict[str, Any]) -> bool:
        p = ev["platform"]
        return "acme" in self.rules.post_mentions(ev) | self.rules.authored(p, ev["author"]["id"])

    def add_post(self, ev: dict[str, Any], ts: int, pooled: bool = True) -> None:
        self.emit(ev, ts, late_ok=not pooled)
        if pooled:
            self.pool[ev["platform"]].append(
                (ts, ev["id"], ev["author"]["id"], self.acme_related(ev))
            )

    def pick_target(self, platform: str, ts: int, acme: bool) -> tuple[int, str, str, bool] | None:
        choices = [
            t for t in self.pool[platform] if ts - 30 * MIN <= t[0] < ts - 1000 and t[3] == acme
        ]
        return self.rng.choice(choices) if choices else None

    def engagement(self, platform: str, ts: int, target: str, target_author: str | None, kind: str,
                   author: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        author = author or self.author(platform)
        if kind == "reply":
            ev = self.post(platform, author, text=self.rng.choice(TEXTS["none"][:2]),
                           reply_to=target, reply_to_author_id=target_author)  # fmt: skip
            return ev
        ev = {"v": 1, "id": self.next_id(platform, kind[:2]), "kind": kind, "platform": platform,
              "author": author, "target": target, "target_author_id": target_author}  # fmt: skip
        if kind == "reshare":
            ev["target_url"] = None
        else:
            ev["reaction"] = self.rng.choice(["like", "like", "upvote"])
        return ev

    # ------------------------------------------------------------ social minutes

    def social_minute(self, p: str, m0: int) -> None:
        rng = self.rng
        for _ in range(_poisson(rng, POST_RATE[p])):
            ts = m0 + rng.randrange(MIN)
            r = rng.random()
            fields = self.random_content()
            if r < 0.12 and (t := self.pick_target(p, ts, acme=False)):
                fields |= {
                    "reply_to": t[1],
                    "reply_to_author_id": t[2] if rng.random() < 0.5 else None,
                }
            elif r < 0.16:  # a reply to a post never seen, known only by its author id
                acct = [a for (b, q), a in self.accounts.items() if q == p and b != "acme"]
                fields |= {
                    "reply_to": self.next_id(p, "unseen"),
                    "reply_to_author_id": rng.choice(acct + ["someone"]),
                }
            elif r < 0.20:
                acct = [a for (b, q), a in self.accounts.items() if q == p]
                fields |= {
                    "quote_of": self.next_id(p, "unseen"),
                    "quote_of_author_id": rng.choice(acct + ["someone"]),
                }
            self.add_post(self.post(p, **fields), ts, pooled=rng.random() < 0.9)
        for _ in range(_poisson(rng, GENERIC_ENGAGEMENT_RATE[p])):
            ts = m0 + rng.randrange(MIN)
            kind = rng.choice(["reaction", "reaction", "reshare"])
            t = self.pick_target(p, ts, acme=False)
            if t is None or rng.random() < 0.1:  # a target never seen in the stream
                acct = [a for (b, q), a in self.accounts.items() if q == p and b != "acme"]
                self.emit(
                    self.engagement(
                        p, ts, self.next_id(p, "unseen"), rng.choice(acct + [None, "someone"]), kind
                    ),
                    ts,
                    late_ok=True,
                )
            else:
                self.emit(
                    self.engagement(p, ts, t[1], t[2] if rng.random() < 0.6 else None, kind),
                    ts,
                    late_ok=True,
                )
        self.acme_engagements(p, m0)
        self.brand_activity(p, m0)
        minute = (m0 - START) // MIN
        if minute % 7 == 3 and minute < MINUTES - 5:
            self.target_after_engagement(p, m0)
        if p == "bluesky" and minute % 20 == 5 and minute < 120:
            self.target_after_window(p, m0)
        if p == "x" and minute % 25 == 11:
            self.target_not_earlier(p, m0)

    def acme_engagements(self, p: str, m0: int) -> None:
        """The volume that EngagementDrop watches: steady, except the drop and the stall."""
        rng = self.rng
        if p == "mastodon":
            n = 35 if m0 in (STALL[0] - MIN, STALL[1]) else 3
        elif p == "bluesky":
            n = _poisson(rng, 0.3 if DROP[0] <= m0 < DROP[1] else 3.5)
        else:
            n = _poisson(rng, {"x": 1.0, "reddit": 0.5}.get(p, 0.0))
        acct = self.accounts.get(("acme", p))
        for _ in range(n):
            ts = m0 + rng.randrange(MIN)
            kind = rng.choices(["reaction", "reshare", "reply"], [55, 30, 15])[0]
            t = self.pick_target(p, ts, acme=True)
            if (t is None or rng.random() < 0.15) and acct:  # unseen, but by the brand's account
                self.emit(self.engagement(p, ts, self.next_id(p, "unseen"), acct, kind), ts)
            elif t is not None:
                self.emit(
                    self.engagement(p, ts, t[1], t[2] if rng.random() < 0.5 else None, kind), ts
                )

    def brand_activity(self, p: str, m0: int) -> None:
        """Brand accounts post, like and reshare: own activity, never a mention or engagement."""
        rng = self.rng
        minute = (m0 - START) // MIN
        for (brand, q), acct in self.accounts.items():
            if q != p:
                continue
            author = {"id": acct, "handle": brand, "followers": 50_000}
            ts = m0 + rng.randrange(MIN)
            if minute % 8 == 0:
                text = rng.choice(
                    [f"{brand} news!", f"#{brand} is better than initech", f"new from {brand}"]
                )
                self.add_post(
                    self.post(p, author, text=text, links=[f"https://www.{brand}.com/n"]), ts
                )
            elif minute % 5 == 2 and (t := self.pick_target(p, ts, acme=brand == "acme")):
                kind = rng.choice(["reaction", "reshare", "reply"])
                self.emit(self.engagement(p, ts, t[1], t[2], kind, author=author), ts)
            elif (
                brand == "globex" and minute % 20 == 7 and (t := self.pick_target(p, ts, acme=True))
            ):
                # a competitor's account resharing acme content is a mention of acme
                self.emit(self.engagement(p, ts, t[1], None, "reshare", author=author), ts)

    def target_after_engagement(self, p: str, m0: int) -> None:
        """The target arrives a minute or two after its engagement, long before any window closes."""
        rng = self.rng
        target_ts, ts = m0 + rng.randrange(45_000), m0 + 50_000 + rng.randrange(10_000)
        content: dict[str, Any] = rng.choice(
            [
                {"text": "ACME shoes!"},
                {"text": "globex rocks"},
                {"links": ["https://shop.acme.com/"]},
            ]
        )
        target = self.post(p, **content)
        if rng.random() < 0.3:
            acct = [a for (b, q), a in self.accounts.items() if q == p]
            if acct:
                target = self.post(
                    p, {"id": rng.choice(acct), "handle": None, "followers": None}, text="hello"
                )
        ev = self.engagement(
            p, ts, target["id"], None, rng.choice(["reaction", "reshare", "reply"])
        )
        arrival = ts + rng.uniform(0, 5_000)
        self.emit(ev, ts, arrival)
        self.emit(target, target_ts, arrival + rng.uniform(60_000, 150_000))

    def target_after_window(self, p: str, m0: int) -> None:
        """The target arrives after the engagement's 1m window closed, before its 1h window did."""
        rng = self.rng
        target_ts, ts = m0 + rng.randrange(45_000), m0 + 50_000 + rng.randrange(10_000)
        target = self.post(p, text="#acme forever")
        ev = self.engagement(p, ts, target["id"], None, rng.choice(["reaction", "reshare"]))
        self.emit(ev, ts)
        self.emit(target, target_ts, ts + rng.uniform(15 * MIN, 17 * MIN))

    def target_not_earlier(self, p: str, m0: int) -> None:
        """A 'target' with a later event time than its engagement is not the target post."""
        rng = self.rng
        ts = m0 + rng.randrange(9_000)
        target_ts = ts + 20_000 + rng.randrange(30_000)
        target = self.post(p, text="Acme!")
        self.emit(self.engagement(p, ts, target["id"], None, "reaction"), ts)
        self.emit(target, target_ts)

    # ------------------------------------------------------------ website minutes

    def web_minute(self, m0: int) -> None:
        rng = self.rng
        for _ in range(_poisson(rng, 3.0)):
            site = rng.choices(["acme.com", "globex.io"], [7, 3])[0]
            self.session(site, m0 + rng.randrange(MIN))
        minute = (m0 - START) // MIN
        if minute % 15 == 4 and minute < MINUTES - 40:
            self.session_edges(m0)

    def web(self, kind: str, site: str, session: str, **fields: Any) -> dict[str, Any]:
        ev = {"v": 1, "id": self.next_id("web", kind[:2]), "kind": kind, "platform": "web", "site": site,
              "url": f"https://{'www.' if site == 'acme.com' else ''}{site}/p/{self.rng.randrange(20)}",
              "session": session}  # fmt: skip
        ev.update(fields)
        return ev

    def first_source(self, site: str) -> dict[str, Any]:
        rng = self.rng
        own = "https://www.acme.com/blog" if site == "acme.com" else "https://shop.globex.io/"

        def utm(source: str, medium: str | None) -> dict[str, Any]:
            return {
                "source": source,
                "medium": medium,
                "campaign": rng.choice([None, "bf2026"]),
                "content": None,
                "term": None,
            }

        r = rng.random()
        if r < 0.25:
            return {"referrer": None, "utm": None}
        if r < 0.35:
            return {"referrer": rng.choice(OTHER_REFERRERS), "utm": None}
        if r < 0.70:
            return {"referrer": rng.choice(SOCIAL_REFERRERS), "utm": None}
        if r < 0.85:  # utm wins over a referrer from another network
            return {
                "referrer": rng.choice(SOCIAL_REFERRERS + [None]),
                "utm": utm(*rng.choice(UTM_SOCIAL)),
            }
        if r < 0.90:  # not a social medium: the referrer decides
            return {
                "referrer": rng.choice([None, None, None, "https://t.co/z"]),
                "utm": utm("facebook", rng.choice(["email", "cpc"])),
            }
        if r < 0.95:  # the site's own referrer is never social, whatever the utm says
            return {"referrer": own, "utm": utm(*rng.choice(UTM_SOCIAL))}
        return {"referrer": None, "utm": utm("newsletter", "email")}

    def session(self, site: str, ts: int, convert: float = 0.15) -> None:
        rng = self.rng
        sid = f"s{self.next_id('web', '')[4:]}"
        own = "https://www.acme.com/" if site == "acme.com" else "https://globex.io/"
        pvs: list[int] = []
        converts = rng.random() < convert
        for i in range(rng.choice([1, 1, 2, 3, 4])):
            fields = self.first_source(site) if i == 0 else {"referrer": own, "utm": None}
            self.emit(self.web("pageview", site, sid, **fields), ts, late_ok=not converts)
            pvs.append(ts)
            if rng.random() < 0.12:
                t = ts + rng.randrange(2_000, 60_000)
                self.emit(
                    self.web("share_click", site, sid, network=rng.choice(SHARE_NETWORKS)),
                    t,
                    late_ok=True,
                )
            ts += rng.randrange(10_000, 8 * MIN)
        if converts:
            t = pvs[-1] + rng.randrange(5_000, 20 * MIN)
            self.emit(
                self.web(
                    "conversion", site, sid, goal="purchase", value=round(rng.uniform(5, 200), 2)
                ),
                t,
            )

    def session_edges(self, m0: int) -> None:
        """Attribution edges: exactly 30 minutes (in), 30 minutes + 1 s (out), earliest pageview
        wins, and a pageview that arrives after its conversion."""
        rng = self.rng
        for delay, extra in (
            (30 * MIN, None),
            (30 * MIN + 1000, None),
            (35 * MIN, 10 * MIN),
            (90_000, None),
        ):
            sid = f"s{self.next_id('web', '')[4:]}"
            t0 = m0 + rng.randrange(60) * 1000  # whole seconds: the 30-minute edge is exact
            pv = self.web(
                "pageview", "acme.com", sid, referrer=rng.choice(SOCIAL_REFERRERS[:14]), utm=None
            )
            conv = self.web("conversion", "acme.com", sid, goal="signup")  # value defaults to 0
            if delay == 90_000:
                arrival = t0 + delay + rng.uniform(0, 5_000)
                self.emit(conv, t0 + delay, arrival)
                self.emit(pv, t0, arrival + rng.uniform(30_000, 90_000))
                continue
            self.emit(pv, t0)
            if extra is not None:
                self.emit(
                    self.web(
                        "pageview", "acme.com", sid, referrer="https://www.acme.com/", utm=None
                    ),
                    t0 + extra,
                )
            self.emit(conv, t0 + delay)

    # ------------------------------------------------------------ stream faults

    def make_late(self) -> None:
        """Move some events far behind the running max: late for 1m only, or for both sizes."""
        rng = self.rng
        early = [it for it in self.items if it.late_ok and it.ts < START + 110 * MIN]
        rng.shuffle(early)
        for it in early[:60]:  # 13-15 min behind: the 1m window closed, the 1h one is open
            if (it.ts - START) % (60 * MIN) <= 45 * MIN:
                it.arrival = it.ts + rng.uniform(13 * MIN, 15 * MIN)
        for it in early[60:85]:  # 80-90 min behind: both windows closed, it changes nothing
            it.arrival = it.ts + rng.uniform(80 * MIN, 90 * MIN)

    def duplicate(self) -> None:
        rng = self.rng
        valid = [it for it in self.items if isinstance(it.data, dict)]
        for it in rng.sample(valid, 150):
            assert isinstance(it.data, dict)
            copy = dict(it.data)
            if rng.random() < 0.5:  # re-ingested: same id, another ingestion time
                copy["ingested_at"] = ts_str(it.ts + 60_000)
            delay = (
                rng.uniform(1_000, 8 * MIN)
                if rng.random() < 0.9
                else rng.uniform(100 * MIN, 120 * MIN)
            )
            self.items.append(Item(copy, it.arrival + delay, it.ts))

    def invalid(self) -> None:
        """Records that must change nothing; most would count if they were accepted."""
        rng = self.rng
        future = "2027-01-01T00:00:00.000Z"  # if it moved the running max, everything would be late
        for i in range(60):
            ts = START + rng.randrange(MINUTES * MIN)
            good = self.post("bluesky", text="Acme! #acme", hashtags=["acmeshoes"])
            good["ts"] = ts_str(ts)
            bad: dict[str, Any] | bytes
            broken = i % 20
            bad = dict(good)
            if broken == 0:
                bad = b'{"v":1,"id":"bluesky:x","kind":"post"'
            elif broken == 1:
                bad = b"not json at all"
            elif broken == 2:
                bad = b'["v", 1]'
            elif broken == 3:
                bad = b'{"v":1,"id":"bluesky:bad\xff","kind":"post","platform":"bluesky","ts":"2026-11-20T09:00:00Z","author":{"id":"\xfe"}}'
            elif broken == 4:
                del bad["id"]
            elif broken == 5:
                del bad["author"]
            elif broken == 6:
                bad |= {"ts": future, "platform": "myspace"}
            elif broken == 7:
                bad |= {"kind": "repost"}
            elif broken == 8:
                bad |= {"ts": "yesterday"}
            elif broken == 9:
                bad |= {"ts": "2026-13-01T00:00:00Z"}
            elif broken == 10:
                bad |= {"ts": "2026-11-20T10:15:03"}  # no offset
            elif broken == 11:
                bad |= {"v": 2}
            elif broken == 12:
                bad |= {"v": "1"}
            elif broken == 13:
                bad |= {"author": {"id": "u1", "handle": None, "followers": "12"}}
            elif broken == 14:
                bad |= {"ts": future, "author": {"id": "u1", "handle": None, "followers": -5}}
            elif broken == 15:
                bad |= {"hashtags": "acmeshoes"}
            elif broken == 16:
                bad |= {"ts": 1763633703}
            elif broken == 17:
                bad = {"v": 1, "id": self.next_id("web", "bad"), "kind": "share_click", "platform": "web",
                       "ts": ts_str(ts), "site": "acme.com", "url": "https://acme.com/", "network": "myspace", "session": "s1"}  # fmt: skip
            elif broken == 18:
                bad = {"v": 1, "id": self.next_id("web", "bad"), "kind": "pageview", "platform": "web",
                       "ts": future, "site": "acme.com", "url": "https://acme.com/"}  # fmt: skip
            else:
                bad |= {"author": {"id": 12345, "handle": None, "followers": 3}}
            self.items.append(
                Item(
                    bad if isinstance(bad, bytes) else json.dumps(bad).encode(),
                    ts + rng.uniform(0, 20_000),
                    ts,
                )
            )

    # ------------------------------------------------------------ all of it

    def run(self) -> list[bytes]:
        for minute in range(MINUTES):
            m0 = START + minute * MIN
            for p in PLATFORMS:
                if not (p == "mastodon" and STALL[0] <= m0 < STALL[1]):
                    self.social_minute(p, m0)
            self.web_minute(m0)
        # nothing after the end (sessions run over): a tail of web events only would look
        # like every platform stopping at once
        self.items = [it for it in self.items if it.ts < START + MINUTES * MIN]
        self.make_late()
        self.duplicate()
        self.invalid()
        order = sorted(range(len(self.items)), key=lambda i: (self.items[i].arrival, i))
        out = []
        for i in order:
            data = self.items[i].data
            out.append(
                data
                if isinstance(data, bytes)
                else json.dumps(data, separators=(",", ":")).encode()
            )
        return out


def _poisson(rng: random.Random, lam: float) -> int:
    n, t = 0, rng.expovariate(1.0) if lam > 0 else 2.0
    while lam > 0 and t < lam:
        n += 1
        t += rng.expovariate(1.0)
    return n


def generate(seed: int = 10) -> tuple[str, list[bytes]]:
    """(config TOML, stream lines in stream order)."""
    return CONFIG_TOML, Generator(seed).run()
