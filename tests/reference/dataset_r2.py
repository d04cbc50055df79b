"""The revision-2 dataset: the v1 stream (``dataset.Generator``, four hours here) plus
scenarios for every r2 rule, with its tracking config (``[alerts.*]`` overrides included).

    config_toml, lines = generate(seed=20)

- bounds: one line or more per rule of EVENTS.md "Bounds" (single fault each, so the
  dead-letter reason is unambiguous), v1's structural faults, and valid lines on the edges
  (ts exactly ingested_at + 5 min, followers 10^12, a 128-character session, ...);
- sentiment: VADER compound exactly 0.05 and -0.05, lang "EN" / "en-GB" / null, other
  languages, empty text;
- top lists on reddit in the 09:00 hour: 14 links (fragments, one link twice in a post),
  12 posts with tied engagement counts, authors with tied follower counts;
- excluded authors (bluesky did:plc:spam, x 42) posting mid-stream, engaged with by others,
  one of them far ahead in event time (it must not close any window); 42 on mastodon counts;
- web: every android-app package (with and without a path, one unknown), each paid medium,
  conversions with int and float values;
- alerts on series only the scenarios feed (brand "umbrella", site "acme.shop"): a
  MentionSpike that fires on x = 3B exactly, a NegativeSentimentSpike that fires only with
  the configured factor, a SocialReferralDrop that flaps; v1's acme/bluesky EngagementDrop
  and mastodon's stall (a drop that must be held back).

The far-future record that is valid (ts and ingested_at both in 2999) is left out: it
would close every window; tests/reference/test_oracle.py covers it.
"""

from __future__ import annotations

import json
import random
from typing import Any

from . import dataset
from .dataset import CONFIG_TOML, MIN, START, Generator, Item, ts_str

R2_TOML = (
    CONFIG_TOML
    + """
[[brands]]
name = "umbrella"
terms = ["umbrella corp"]
hashtags = ["umbrellacorp"]
domains = ["umbrella.example"]
competitor = true

[[sites]]
name = "acme.shop"
domains = ["acme.shop"]

[sentiment]
scorer = "vader"

[filters]
exclude_authors = { bluesky = ["did:plc:spam"], x = ["42"] }

[alerts.MentionSpike]
floor = 25

[alerts.NegativeSentimentSpike]
factor = 2.0

[alerts.SocialReferralDrop]
floor = 15
resolve = 0.75
"""
)

MINUTES = 240  # 08:00-12:00: alerts are evaluated from 10:16 on
SPAM = {"bluesky": "did:plc:spam", "x": "42"}
POSITIVE_005 = "Acme: not beautiful and kinda ATTRACTIVE"  # VADER compound exactly 0.05
NEGATIVE_005 = "Acme is not anguish and kinda ADMONISHED"  # exactly -0.05
SENTIMENT_CASES: list[tuple[str, str | None, list[str]]] = [
    (POSITIVE_005, "en", []),
    (NEGATIVE_005, "en-GB", []),
    ("Acme is great", "EN", []),
    ("Acme shoes are terrible", None, []),
    ("I love Acme", "en-us", []),
    ("Acme ist super", "de", []),  # positive if it were scored: another language
    ("Acme est vraiment génial", "fr", []),
    ("", "en", ["acmeshoes"]),  # empty text: unrated
    ("Acme shoes 😀 love them", "en", []),
    ("(acme) delivered early", "en", []),  # neutral
]
APP_REFERRERS = [
    "android-app://com.twitter.android", "android-app://com.twitter.android/http/twitter.com/a",
    "android-app://com.facebook.katana", "android-app://com.facebook.lite/",
    "android-app://com.instagram.android", "android-app://com.linkedin.android/feed",
    "android-app://com.reddit.frontpage", "android-app://xyz.blueskyweb.app",
    "android-app://org.joinmastodon.android", "android-app://com.google.android.youtube",
    "android-app://com.pinterest", "android-app://com.zhiliaoapp.musically",
    "android-app://org.telegram.messenger", "android-app://com.whatsapp",
    "android-app://com.instagram.barcelona/x", "android-app://com.google.android.gm",
]  # fmt: skip
PAID = [  # (utm source, medium, referrer)
    ("facebook", "paid_social", None), ("linkedin", "paid-social", None),
    ("x", "paidsocial", None), ("facebook", "cpc", "https://www.facebook.com/"),
    ("x", "ppc", "https://t.co/ad"), ("reddit", "paidxyz", "https://www.reddit.com/r/a"),
    ("instagram", "paid", "android-app://com.instagram.android"),
    ("facebook", "cpc", None),  # not social at all: the medium fails step 1, no referrer
    ("bsky", "paid_social", "https://www.acme.com/"),  # own site: never social
]  # fmt: skip
VALUES = [0, 5, 12.5, 19.99, 100, 0.1, 0.2, 7]


class R2Generator(Generator):
    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.rules = dataset.Rules(dataset.config_from_toml(R2_TOML))
        self.r2 = random.Random(seed + 1)  # scenarios: tuning them leaves the v1 noise alone

    def r2_emit(self, ev: dict[str, Any], ts: int, arrival: float | None = None) -> None:
        ev["ts"], ev["ingested_at"] = ts_str(ts), ts_str(ts + 2000)
        arrival = ts + self.r2.uniform(0, 20_000) if arrival is None else arrival
        self.items.append(Item(ev, arrival, ts))

    def user(self, p: str) -> dict[str, Any]:
        uid, followers = self.r2.choice(self.users[p])
        return {"id": uid, "handle": None, "followers": followers}

    def at(self, m: int) -> int:
        return START + m * MIN + self.r2.randrange(MIN)

    # ------------------------------------------------------------ alert series

    def umbrella(self, m: int) -> None:
        """Mentions of umbrella on x (MentionSpike) and its negative posts on bluesky."""
        n = 11 if 150 <= m < 153 else 15 if 200 <= m < 203 else 1  # x = 3 B exactly at 10:33
        for _ in range(n):
            self.r2_emit(self.post("x", self.user("x"), text="Umbrella Corp update"), self.at(m))
        negative = 4 if 170 <= m < 174 else 1 if m % 2 == 0 else 0
        for _ in range(negative):
            text = self.r2.choice(["Umbrella Corp is awful, I hate it", "Umbrella Corp layoffs are terrible news"])  # fmt: skip
            self.r2_emit(self.post("bluesky", self.user("bluesky"), text=text), self.at(m))
        if m % 3 == 0:
            self.r2_emit(self.post("bluesky", self.user("bluesky"), text="umbrella corp: nice"), self.at(m))  # fmt: skip

    def referrals(self, m: int) -> None:
        """acme.shop's linkedin referrals (SocialReferralDrop): 2 a minute, with gaps."""
        # fires at 11:08, x = 0.75 B exactly at 11:23 (no resolve), resolves at 11:24,
        # fires again at 11:38 and resolves at 11:44
        n = 0 if 180 <= m < 188 or 205 <= m < 209 else 1 if 188 <= m < 197 or 209 <= m < 218 else 2
        for i in range(n):
            ref = "android-app://com.linkedin.android" if i else "https://www.linkedin.com/feed"
            self.web_session("acme.shop", self.at(m), {"referrer": ref, "utm": None})

    # ------------------------------------------------------------ insight scenarios

    def web_session(self, site: str, ts: int, first: dict[str, Any], value: Any = None) -> None:
        sid = f"r2s{self.next_id('web', '')[4:]}"
        pv = self.web("pageview", site, sid, **first)
        pv["url"] = f"https://{site}/p/{self.r2.randrange(9)}"
        self.r2_emit(pv, ts)
        if value is not None:
            conv = self.web("conversion", site, sid, goal="purchase", value=value)
            self.r2_emit(conv, ts + self.r2.randrange(5_000, 10 * MIN))

    def web_insight(self, m: int) -> None:
        if m % 2 == 0:
            app = APP_REFERRERS[(m // 2) % len(APP_REFERRERS)]
            self.web_session("acme.com", self.at(m), {"referrer": app, "utm": None}, VALUES[m % 8])
        else:
            source, medium, ref = PAID[(m // 2) % len(PAID)]
            utm = {"source": source, "medium": medium, "campaign": None, "content": None, "term": None}  # fmt: skip
            value = VALUES[(m // 3) % 8] if m % 3 == 0 else None
            self.web_session("acme.com", self.at(m), {"referrer": ref, "utm": utm}, value)

    def sentiment_posts(self, m: int) -> None:
        if m % 4 == 1:
            text, lang, tags = SENTIMENT_CASES[(m // 4) % len(SENTIMENT_CASES)]
            ev = self.post("bluesky", self.user("bluesky"), text=text, lang=lang, hashtags=tags)
            self.r2_emit(ev, self.at(m))

    def top_lists(self) -> None:
        """acme on reddit, 09:00-10:00: more than 10 candidates of each list, with ties."""
        targets = []
        for k in range(14):
            links = [f"https://acme.com/p/{k}#ref", "https://example.org/x"]
            if k == 3:
                links += ["https://acme.com/p/3#again"]  # the same link twice: counts once
            author = {"id": f"reddit-top{k % 12}", "handle": None, "followers": 500 if k % 3 else None}  # fmt: skip
            ev = self.post("reddit", author, text="Acme drop", links=links)
            ts = START + (62 + 3 * k) * MIN + self.r2.randrange(MIN)
            self.r2_emit(ev, ts)
            targets.append((ev["id"], ts))
        for i, (tid, ts) in enumerate(targets[:12]):
            for j in range(2 if i < 11 else 3):
                kind = ("reaction", "reshare", "reaction")[j]
                ev = self.engagement("reddit", ts, tid, None, kind, author=self.user("reddit"))
                self.r2_emit(ev, ts + (j + 1) * 20_000)

    def excluded_authors(self, m: int) -> None:
        if not (60 <= m < 120) or m % 3:
            return
        p = "bluesky" if m % 2 else "x"
        spam = {"id": SPAM[p], "handle": "spam", "followers": 99_999}
        ts = self.at(m)
        ev = self.post(p, spam, text="Acme is the best! #acmeshoes", hashtags=["acmeshoes"],
                       links=["https://acme.com/spam"])  # fmt: skip
        self.r2_emit(ev, ts)
        for j, kind in enumerate(("reaction", "reshare", "reply")):  # others engage with it
            target_author = SPAM[p] if j == 1 else None
            e = self.engagement(p, ts, ev["id"], target_author, kind, author=self.user(p))
            self.r2_emit(e, ts + (j + 1) * 15_000)
        if (t := self.pick_target(p, ts, acme=True)) is not None:  # spam likes acme posts
            self.r2_emit(self.engagement(p, ts, t[1], t[2], "reaction", author=spam), ts + 5_000)
        if m == 99:  # far ahead of the stream: would close every 1m window if it counted
            ahead = self.post(p, spam, text="acme")
            self.r2_emit(ahead, ts + 40 * MIN, arrival=ts)
            ahead["ingested_at"] = ahead["ts"]
        if m % 9 == 0:  # the same id on another platform is not excluded
            self.r2_emit(self.post("mastodon", {"id": "42", "handle": None, "followers": 3}, text="acme!"), ts)  # fmt: skip

    # ------------------------------------------------------------ bounds

    def bounds_lines(self) -> None:
        rng = self.r2

        def base(kind: str) -> dict[str, Any]:
            if kind == "post":
                return self.post("bluesky", self.user("bluesky"), text="Acme! #acme", hashtags=["acmeshoes"])  # fmt: skip
            ev = self.web(kind, "acme.com", f"b{rng.randrange(10**6)}")
            return ev | ({"goal": "buy", "value": 3} if kind == "conversion" else
                         {"network": "x"} if kind == "share_click" else {"referrer": "https://t.co/a", "utm": None})  # fmt: skip

        faults: list[tuple[str, Any]] = [
            ("post", {"ts": "٢٠٢٦-11-20T09:00:00Z"}), ("post", {"ts": "２０２６-11-20T09:00:00Z"}),
            ("post", {"ts": "2026-11-20t09:00:00Z"}), ("post", {"ts": "2026-11-20T09:00:00z"}),
            ("post", {"ts": "2026-11-20T09:00:00+00:00"}), ("post", {"ts": "2026-02-30T09:00:00Z"}),
            ("post", {"ts": "2026-11-20T24:00:00Z"}), ("post", {"ts": "2026-11-20T09:00:60Z"}),
            ("post", {"ts": "2026-11-20 09:00:00Z"}), ("post", {"ts": "2026-11-20T09:00Z"}),
            ("post", {"ts": 1763629200}), ("post", {"ingested_at": None}), ("post", {"ingested_at": "-"}),
            ("pageview", {"ingested_at": "2026-11-20T09:00:00.000+01:00"}), ("post", {"ts": "2026-11-20T09:00:00.Z"}),
            ("post", {"ts": "2999-01-01T00:00:00Z"}), ("post", {"ts": "ADD_300001"}),
            ("post", {"ts": "1999-12-31T23:59:59.999Z"}),
            ("post", {"author": {"id": "u", "handle": None, "followers": 12.0}}),
            ("post", {"author": {"id": "u", "handle": None, "followers": -1}}),
            ("post", {"author": {"id": "u", "handle": None, "followers": 10**12 + 1}}),
            ("conversion", {"value": -0.01}), ("conversion", {"value": 10**12 + 0.5}),
            ("post", {"id": "x:123"}), ("post", {"id": "bluesky123"}), ("post", {"id": "Bluesky:1"}),
            ("pageview", {"id": "acme:1"}),
            ("pageview", {"url": "ftp://acme.com/x"}), ("share_click", {"url": "javascript:alert(1)"}),
            ("conversion", {"url": "www.acme.com/checkout"}), ("pageview", {"url": "https:/acme.com/"}),
            ("pageview", {"session": ""}), ("pageview", {"session": "s" * 129}),
            ("share_click", {"session": "has space"}), ("pageview", {"session": "tab\tsep"}),
            ("pageview", {"session": "sé"}), ("conversion", {"session": "192.168.0.1"}),
            ("pageview", {"session": "999.1.1.1"}), ("pageview", {"session": "::1"}),
            ("pageview", {"session": "2001:db8::1"}), ("pageview", {"session": "ann@example.com"}),
            ("post", {"text": "acme " * 14_000}),
            ("post", {"kind": "repost"}), ("post", {"platform": "myspace", "id": "myspace:1"}),
            ("post", {"v": 2}), ("post", {"author": None}), ("reshare_no_target", {}),
        ]  # fmt: skip
        raw_faults = [b'{"v":1,"id":"bluesky:x","kind":"post"', b"not json", b'["v", 1]',
                      b'{"v":1,"id":"web:n","kind":"conversion","platform":"web","value":NaN}',
                      b'{"v":1,"id":"bluesky:bad\xff","kind":"post"}']  # fmt: skip
        valid_edges: list[tuple[str, Any]] = [
            ("post", {"ts": "ADD_300000"}), ("post", {"author": {"id": "big", "handle": None, "followers": 10**12}}),
            ("post", {"author": {"id": "zero", "handle": None, "followers": 0}}),
            ("post", {"ts": "FRACTION_6"}), ("conversion", {"value": 10**12}), ("conversion", {"value": 0.0}),
            ("pageview", {"session": "s" * 128}), ("pageview", {"session": "1.2.3"}),
            ("pageview", {"session": "a@b"}), ("pageview", {"session": "abc:def"}),
            ("share_click", {"session": "1.2.3.4.5"}), ("post", {"ts": "2000-01-01T00:00:00Z"}),
        ]  # fmt: skip
        for kind, change in faults + valid_edges:
            ts = START + rng.randrange(20 * MIN, (MINUTES - 20) * MIN)
            if kind == "reshare_no_target":
                ev = self.engagement("bluesky", ts, "bluesky:t", None, "reshare")
                del ev["target"]
            else:
                ev = base(kind)
            ev["ts"], ev["ingested_at"] = ts_str(ts), ts_str(ts + 2000)
            ev.update(change)
            if ev.get("ts") in ("ADD_300001", "ADD_300000"):  # ts this long after ingested_at
                ev["ts"], ev["ingested_at"] = ts_str(ts), ts_str(ts - int(ev["ts"][4:]))
            if ev.get("ts") == "FRACTION_6":
                ev["ts"] = ts_str(ts)[:-1] + "456Z"
            self.items.append(Item(json.dumps(ev).encode(), ts + rng.uniform(0, 20_000), ts))
        for raw in raw_faults:
            ts = START + rng.randrange(20 * MIN, (MINUTES - 20) * MIN)
            self.items.append(Item(raw, ts + rng.uniform(0, 20_000), ts))

    # ------------------------------------------------------------ all of it

    def run(self) -> list[bytes]:
        for minute in range(MINUTES):
            m0 = START + minute * MIN
            for p in dataset.PLATFORMS:
                if not (p == "mastodon" and dataset.STALL[0] <= m0 < dataset.STALL[1]):
                    self.social_minute(p, m0)
            self.web_minute(m0)
            self.umbrella(minute)
            self.referrals(minute)
            self.web_insight(minute)
            self.sentiment_posts(minute)
            self.excluded_authors(minute)
        self.top_lists()
        self.items = [it for it in self.items if it.ts < START + MINUTES * MIN]
        self.make_late()
        self.duplicate()
        self.bounds_lines()
        order = sorted(range(len(self.items)), key=lambda i: (self.items[i].arrival, i))
        out = []
        for i in order:
            data = self.items[i].data
            out.append(data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode())  # fmt: skip
        return out


def generate(seed: int = 20) -> tuple[str, list[bytes]]:
    """(config TOML, stream lines in stream order)."""
    return R2_TOML, R2Generator(seed).run()
