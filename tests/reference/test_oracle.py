"""The oracle against tiny streams whose expected rows were worked out by hand."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from ingest.config import Config

from .alerts import ALERTS, evaluate
from .bounds import BOUNDS_REASONS
from .dataset import generate
from .dataset_r2 import NEGATIVE_005, POSITIVE_005
from .dataset_r2 import generate as generate_r2
from .insight import scorer, sentiment
from .oracle import (
    MINUTE,
    WINDOWS,
    compute_results,
    config_from_toml,
    decode,
    main,
    parse_ts,
    read_stream,
    reason,
)

Row = dict[str, Any]

CONFIG = config_from_toml("""
[[brands]]
name = "acme"
terms = ["acme", "acme shoes"]
hashtags = ["acmeshoes"]
domains = ["acme.com"]
[brands.accounts]
bluesky = ["did:acme"]

[[brands]]
name = "rival"
terms = ["rival co"]
domains = ["rival.io"]
competitor = true
[brands.accounts]
bluesky = ["did:rival"]

[[sites]]
name = "acme.com"
domains = ["acme.com", "www.acme.com"]

[networks.extra_domains]
mastodon = ["fosstodon.org"]
""")
DAY = "2026-11-20T"


def at(hms: str) -> str:
    return f"{DAY}{hms}Z"


def line(ev: dict[str, Any]) -> bytes:
    return json.dumps(ev).encode()


def post(id: str, hms: str, text: str | None = "", author: str = "u1", followers: int | None = 10,
         platform: str = "bluesky", **fields: Any) -> bytes:  # fmt: skip
    ev = {"v": 1, "id": f"{platform}:{id}", "kind": "post", "platform": platform, "ts": at(hms),
          "ingested_at": at(hms), "author": {"id": author, "handle": None, "followers": followers}, "text": text}  # fmt: skip
    return line(ev | fields)


def engage(kind: str, id: str, hms: str, target: str, target_author: str | None = None,
           author: str = "u9", followers: int | None = 1) -> bytes:  # fmt: skip
    return line({"v": 1, "id": f"bluesky:{id}", "kind": kind, "platform": "bluesky", "ts": at(hms),
                 "ingested_at": at(hms), "author": {"id": author, "followers": followers}, "target": f"bluesky:{target}",
                 "target_author_id": target_author})  # fmt: skip


def web(kind: str, id: str, hms: str, session: str = "s", **fields: Any) -> bytes:
    return line({"v": 1, "id": f"web:{id}", "kind": kind, "platform": "web", "ts": at(hms),
                 "ingested_at": at(hms), "site": "acme.com", "url": "https://www.acme.com/", "session": session} | fields)  # fmt: skip


def results(lines: list[bytes]) -> dict[tuple[str, ...], float]:
    """{(metric, window, HH:MM of window start, *label values): value}"""
    return {
        (r["metric"], r["window"], r["window_start"][11:16], *r["labels"].values()): r["value"]
        for r in compute_results(lines, CONFIG)
    }


def mentioned(lines: list[bytes]) -> set[str]:
    return {k[3] for k in results(lines) if k[:2] == ("mentions", "1m")}


# ---------------------------------------------------------------- matching


@pytest.mark.parametrize(
    ("fields", "brands"),
    [
        ({"text": "Acme!"}, {"acme"}),
        ({"text": "#acme"}, {"acme"}),
        ({"text": "acmegrowth"}, set()),
        ({"text": "follow @acme_fan"}, set()),  # "_" is a word character
        ({"text": "ACME\n\tshoes"}, {"acme"}),
        ({"text": "Rival\n  Co."}, {"rival"}),  # a phrase matches across any whitespace
        ({"text": "rivalco"}, set()),
        ({"text": "rival"}, set()),
        ({"text": "", "hashtags": ["AcmeShoes"]}, {"acme"}),
        ({"text": "", "hashtags": ["acme"]}, set()),  # terms match the text, not the hashtags
        ({"text": "#acmeshoes"}, set()),  # hashtags match the list, not the text
        ({"links": ["https://shop.acme.com/x"]}, {"acme"}),
        ({"links": ["https://ACME.COM:443/"]}, {"acme"}),
        ({"links": ["https://notacme.com/"]}, set()),
        ({"links": ["https://acme.com.evil.example/"]}, set()),
        ({"reply_to": "bluesky:gone", "reply_to_author_id": "did:acme"}, {"acme"}),
        ({"quote_of": "bluesky:gone", "quote_of_author_id": "did:rival"}, {"rival"}),
        ({"text": "acme and Rival Co", "author": "did:acme"}, {"rival"}),  # own activity
        (
            {"text": "acme", "author": "did:acme", "platform": "x"},
            {"acme"},
        ),  # accounts per platform
    ],
)
def test_mentions(fields: dict[str, Any], brands: set[str]) -> None:
    assert mentioned([post("p", "10:00:05", **fields)]) == brands


# ---------------------------------------------------------------- SMM arithmetic


def test_smm_metrics_of_one_minute() -> None:
    lines = [
        post("p1", "10:00:01", "acme", author="u1", followers=100),
        post("p2", "10:00:02", "#acme", author="u1", followers=150),  # same author: max 150
        post("p3", "10:00:03", "acme shoes", author="u2", followers=None),  # null counts 0
        post("p4", "10:00:04", "hello", author="did:acme", followers=9000),  # brand's own post
        engage("reshare", "r1", "10:00:10", "p4", author="u3", followers=40),  # of acme's post
        engage("reshare", "r2", "10:00:11", "gone", author="u4", followers=10),  # unknown target
        engage("reshare", "r3", "10:00:12", "gone", "did:acme", author="u5", followers=5),
        engage("reaction", "l1", "10:00:13", "p1", author="u6"),
        engage("reaction", "l2", "10:00:14", "p1", author="did:acme"),  # own like
        engage("reshare", "r4", "10:00:15", "p1", author="did:acme"),  # own reshare
        post("reply", "10:00:16", "nice", author="u7", reply_to="bluesky:p3"),
        post("p5", "10:00:20", "Rival Co rocks", author="u8", followers=20),
    ]
    r = results(lines)
    for w, start in (("1m", "10:00"), ("1h", "10:00")):
        acme = {m: r.get((m, w, start, "acme", "bluesky")) for m in (
            "mentions", "unique_authors", "potential_reach", "engagements", "engagement_rate",
            "amplification", "share_of_voice")}  # fmt: skip
        assert acme == {
            "mentions": 5,  # p1 p2 p3 r1 r3
            "unique_authors": 4,  # u1 u2 u3 u5
            "potential_reach": 195,  # 150 + 0 + 40 + 5
            "engagements": 4,  # r1 r3 l1 reply
            "engagement_rate": 4 / 195,
            "amplification": 2 / 4,  # r1 r3 / p1 p2 p3 p4
            "share_of_voice": 5 / 6,
        }
        rival = {m: r.get((m, w, start, "rival", "bluesky")) for m in (
            "mentions", "potential_reach", "engagements", "engagement_rate", "amplification",
            "share_of_voice")}  # fmt: skip
        assert rival == {
            "mentions": 1, "potential_reach": 20, "engagements": None, "engagement_rate": 0.0,
            "amplification": 0.0, "share_of_voice": 1 / 6,
        }  # fmt: skip
    assert isinstance(r[("mentions", "1m", "10:00", "acme", "bluesky")], int)


def test_share_of_voice_has_every_brand() -> None:
    r = results([post("p", "10:00:01", "acme")])
    assert r[("share_of_voice", "1m", "10:00", "acme", "bluesky")] == 1.0
    assert r[("share_of_voice", "1m", "10:00", "rival", "bluesky")] == 0.0
    assert ("mentions", "1m", "10:00", "rival", "bluesky") not in r


# ---------------------------------------------------------------- stream order and lateness


def test_targets_out_of_order_and_after_a_window_closed() -> None:
    lines = [
        engage("reaction", "e1", "10:00:30", "t1"),
        post("t1", "10:00:10", "acme"),  # arrives after its engagement, window still open
        engage("reaction", "e2", "10:01:10", "t2"),
        post("t2", "10:01:20", "acme"),  # not earlier than its engagement: not its target
        engage("reaction", "e3", "10:02:30", "t3"),
        post("filler", "10:13:00", "hello"),  # 10:03 + 10 min: the 10:02 minute is closed
        post("t3", "10:02:10", "acme"),  # late for 1m, on time for 1h
        post("t4", "10:03:59.999", "acme"),  # its minute closes at 10:14: on time
        post("t5", "10:04:30", "acme"),
        engage("reaction", "e5", "10:04:30", "t5"),  # same event time: not earlier
    ]
    r = results(lines)
    assert r[("engagements", "1m", "10:00", "acme", "bluesky")] == 1
    assert ("engagements", "1m", "10:01", "acme", "bluesky") not in r
    assert ("engagements", "1m", "10:02", "acme", "bluesky") not in r
    assert r[("engagements", "1h", "10:00", "acme", "bluesky")] == 2  # e1 and e3
    assert ("mentions", "1m", "10:02", "acme", "bluesky") not in r
    assert r[("mentions", "1m", "10:03", "acme", "bluesky")] == 1
    assert ("engagements", "1m", "10:04", "acme", "bluesky") not in r
    assert r[("mentions", "1h", "10:00", "acme", "bluesky")] == 5  # t1 t2 t3 t4 t5


def test_late_duplicate_and_invalid_records_change_nothing() -> None:
    lines = [
        post("a", "10:00:00", "acme"),
        post("filler1", "10:20:00"),
        post("b", "10:05:00", "acme"),  # 1m window closed at 10:16, 1h open until 11:10
        post("a", "10:00:00", "acme"),  # duplicate
        post("x", "10:21:00", "acme", platform="myspace"),  # invalid
        post("future", "10:21:00", "acme", ts="2027-01-01T00:00:00Z", v=2),  # invalid
        post("filler2", "11:10:00"),
        post("c", "10:30:00", "acme"),  # late for both sizes
        engage("reaction", "e", "11:09:00", "c"),  # its target was late for both: unseen
    ]
    r = results(lines)
    assert {k: v for k, v in r.items() if k[0] == "mentions"} == {
        ("mentions", "1m", "10:00", "acme", "bluesky"): 1,
        ("mentions", "1h", "10:00", "acme", "bluesky"): 2,
    }
    assert not any(k[0] == "engagements" for k in r)
    events, last = read_stream(lines, 600_000, CONFIG)
    assert [a.ev["id"][8:] for a in events] == ["a", "filler1", "b", "filler2", "e"]
    assert [a.on_time for a in events] == [
        ("1m", "1h"),
        ("1m", "1h"),
        ("1h",),
        ("1m", "1h"),
        ("1m", "1h"),
    ]
    assert last == parse_ts(at("11:10:00"))


# ---------------------------------------------------------------- SMO


def test_social_referrals_share_clicks_and_yield() -> None:
    def utm(source: str, medium: str | None = None) -> dict[str, str | None]:
        return {"source": source, "medium": medium, "campaign": None, "content": None, "term": None}

    lines = [
        web("pageview", "1", "10:00:01", referrer="https://t.co/x"),  # x
        web("pageview", "2", "10:00:02", referrer="https://t.co/x", utm=utm("facebook", "social")),
        web("pageview", "3", "10:00:03", referrer="https://www.acme.com/a", utm=utm("x", "social")),
        web("pageview", "4", "10:00:04", referrer="https://shop.acme.com/"),  # own subdomain
        web("pageview", "5", "10:00:05", utm=utm("fb")),  # facebook, no medium
        web(
            "pageview",
            "6",
            "10:00:06",
            referrer="https://www.reddit.com/r",
            utm=utm("facebook", "email"),
        ),
        web("pageview", "7", "10:00:07", utm=utm("facebook", "email")),
        web("pageview", "8", "10:00:08", referrer="https://www.google.com/"),
        web("pageview", "9", "10:00:09", referrer="https://fosstodon.org/@a"),  # configured extra
        web("pageview", "10", "10:00:10", utm=utm("bsky.app", "social")),  # a domain of bluesky
        web("share_click", "11", "10:00:11", network="facebook"),
        web("share_click", "12", "10:00:12", network="facebook"),
        web("share_click", "13", "10:00:13", network="email"),
    ]
    r = results(lines)
    for w in ("1m", "1h"):
        got = {(k[0], *k[3:]): v for k, v in r.items() if k[1] == w}
        expected: dict[tuple[str, ...], float] = {
            ("pageviews", "acme.com"): 10,
            ("share_rate", "acme.com"): 0.3,
            ("share_clicks", "acme.com", "facebook"): 2,
            ("share_clicks", "acme.com", "email"): 1,
        }
        for n, count in {"x": 1, "facebook": 2, "reddit": 1, "mastodon": 1, "bluesky": 1}.items():
            expected[("social_referrals", "acme.com", n)] = count
            expected[("social_conversion_rate", "acme.com", n)] = 0.0
        if w == "1h":
            expected[("referral_yield", "acme.com", "facebook")] = 1.0
            expected[("referral_yield", "acme.com", "email")] = 0.0
        assert got == expected


def test_social_conversions_use_the_earliest_pageview_of_the_last_30_minutes() -> None:
    lines = [
        web("pageview", "1", "10:00:00", "s1", referrer="https://t.co/a"),
        web("pageview", "2", "10:00:00", "s2", referrer="https://t.co/b"),
        web("pageview", "3", "10:05:00", "s3", referrer="https://bsky.app/x"),
        web("pageview", "4", "10:10:00", "s3", referrer="https://www.acme.com/"),
        web("conversion", "5", "10:30:00", "s1", goal="buy"),  # exactly 30 minutes: in
        web("conversion", "6", "10:30:01", "s2", goal="buy", value=3),  # 30 min + 1 s: out
        web("conversion", "7", "10:36:00", "s3", goal="buy"),  # earliest in range is 10:10
        web("conversion", "8", "10:40:30", "s4", goal="buy"),
        web("pageview", "9", "10:39:00", "s4", referrer="https://bsky.app/y"),  # arrives after
        web("conversion", "10", "10:40:45", "s5", goal="buy"),
        web("pageview", "11", "10:41:00", "s5", referrer="https://t.co/c"),  # after the conversion
        web("conversion", "12", "10:50:00", "s6", goal="buy"),
        web("pageview", "13", "11:01:00", "other"),  # 10:51 + 10 min: the 10:50 minute closes
        web("pageview", "14", "10:45:00", "s6", referrer="https://t.co/d"),  # too late for 1m
    ]
    r = results(lines)
    conv = {k: v for k, v in r.items() if k[0] == "social_conversions"}
    assert conv == {
        ("social_conversions", "1m", "10:30", "acme.com", "x"): 1,
        ("social_conversions", "1m", "10:40", "acme.com", "bluesky"): 1,
        ("social_conversions", "1h", "10:00", "acme.com", "x"): 2,  # s1 and s6
        ("social_conversions", "1h", "10:00", "acme.com", "bluesky"): 1,
    }
    assert r[("social_conversion_rate", "1h", "10:00", "acme.com", "x")] == 2 / 4
    assert r[("social_conversion_rate", "1h", "10:00", "acme.com", "bluesky")] == 0.5
    assert r[("social_conversion_rate", "1m", "10:39", "acme.com", "bluesky")] == 0.0


# ---------------------------------------------------------------- EngagementDrop

T0 = parse_ts(at("00:00:00")) or 0


def minutes(values: dict[int, int]) -> dict[int, int]:
    return {T0 + m * MINUTE: v for m, v in values.items()}


def alerts(
    eng: dict[int, int],
    active: set[int] | None = None,
    last: int = 200,
    first: int = 0,
    name: str = "EngagementDrop",
    rule: tuple[float, float, float] | None = None,
) -> list[tuple[int, int]]:
    """(minute, 1 fire / 0 resolve) of one alert on one series, from 1m counts by minute."""
    alert = next(a for a in ALERTS if a.name == name)
    labels = (("site", "acme.com"), ("network", "x")) if alert.web else (("brand", "acme"), ("platform", "bluesky"))  # fmt: skip
    platform = "web" if alert.web else "bluesky"
    rows = evaluate(
        alert,
        rule or CONFIG.alert_rule(name),
        {labels: minutes(eng)},
        {
            platform: set(
                minutes(dict.fromkeys(active if active is not None else range(-20000, 20000), 1))
            )
        },
        T0 + first * MINUTE,
        T0 + last * MINUTE,
    )
    assert all(r["labels"] == {"alertname": name, **dict(labels)} for r in rows)
    return [
        (((parse_ts(str(r["window_start"])) or 0) - T0) // MINUTE, int(str(r["value"])))
        for r in rows
    ]


def test_drop_fires_below_half_and_resolves_above_0_8() -> None:
    # 4 a minute (baseline 60 per 15 min), nothing in [150, 170).
    eng = {m: 0 if 150 <= m < 170 else 4 for m in range(200)}
    # T=157: 8 minutes of 4 = 32 >= 30; T=158: 28 < 30, fires.
    # T=180: 40 vs (120 - 15) * 4 / 8 = 52.5 -> 0.76; T=181: 44 / 52 = 0.85 > 0.8, resolves.
    assert alerts(eng) == [(158, 1), (181, 0)]


def test_drop_needs_a_baseline_of_20_and_history() -> None:
    assert alerts({m: 0 if m >= 150 else 1 for m in range(200)}) == []  # baseline 15
    # history from minute 100 only: evaluated from T=235, after the drop is over
    assert (
        alerts({m: 0 if 150 <= m < 170 else 4 for m in range(100, 300)}, first=100, last=300) == []
    )


def test_no_drop_alert_while_the_platform_is_stalled() -> None:
    # The platform sends nothing in [150, 170); bursts before and after keep the partly
    # stalled quarters above half of the baseline, so only a stalled quarter is below it.
    eng = {m: 0 if 150 <= m < 170 else 40 if m in (149, 170) else 4 for m in range(240)}
    stalled = set(range(240)) - set(range(150, 170))
    assert alerts(eng, stalled, last=240) == []
    assert alerts(eng, None, last=240)[0] == (165, 1)  # would fire without the stall rule


def test_drop_baseline_one_week_earlier() -> None:
    week = 7 * 24 * 60
    eng = {m: 10 for m in range(40)} | {m: 3 for m in range(week - 180, week + 60)}
    # From T = 1w+15m the week-old quarter (150) is the baseline: 45 < 75 fires; the mean of
    # the last 2 hours (45) would not.
    active = set(range(40)) | set(range(week - 180, week + 60))  # stalled in between
    assert alerts(eng, active, last=week + 30) == [(week + 15, 1)]


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("raw", "valid"),
    [
        (post("p", "10:00:00"), True),
        (post("p", "10:00:00", author="", followers=1), False),
        (post("p", "10:00:00", followers=None), True),
        (post("p", "10:00:00", followers=-1), False),
        (post("p", "10:00:00", v=2), False),
        (post("p", "10:00:00", v="1"), False),
        (post("p", "10:00:00", v=True), False),
        (post("p", "10:00:00", kind="repost"), False),
        (post("p", "10:00:00", platform="myspace"), False),
        (post("p", "10:00:00", ts="2026-11-20T10:15:03"), False),
        (post("p", "10:00:00", ts="2026-11-20T10:00:00.5Z"), True),
        (post("p", "10:00:00", ts="2026-13-20T10:15:03Z"), False),
        (post("p", "10:00:00", ts=1763633703), False),
        (post("p", "10:00:00", hashtags="acme"), False),
        (post("p", "10:00:00", text=None), False),
        (post("p", "10:00:00", reply_to=None), True),
        (
            line(
                {
                    "v": 1,
                    "id": "bluesky:p",
                    "kind": "post",
                    "platform": "bluesky",
                    "ts": at("10:00:00"),
                    "ingested_at": at("10:00:00"),
                }
            ),
            False,
        ),
        (engage("reaction", "e", "10:00:00", "t"), True),
        (engage("reaction", "e", "10:00:00", "t")[:-1], False),
        (web("share_click", "s", "10:00:00", network="email"), True),
        (web("share_click", "s", "10:00:00", network="myspace"), False),
        (web("conversion", "c", "10:00:00", goal="buy"), True),
        (web("conversion", "c", "10:00:00", goal="buy", value="3"), False),
        (web("pageview", "v", "10:00:00", utm=None, referrer=None), True),
        (web("pageview", "v", "10:00:00", utm={"source": 3}), False),
        (web("pageview", "v", "10:00:00", session=""), False),
        (b"[1, 2]", False),
        (post("p", "10:00:00", text="x" * 70_000), False),  # larger than the limit
    ],
)
def test_decode(raw: bytes, valid: bool) -> None:
    assert (decode(raw) is not None) is valid


# ---------------------------------------------------------------- the generated dataset


def test_dataset_is_deterministic_and_exercises_the_alert(tmp_path) -> None:
    config_toml, lines = generate()
    assert generate()[1] == lines
    (tmp_path / "c.toml").write_text(config_toml)
    (tmp_path / "x.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    assert main(["--config", str(tmp_path / "c.toml"), "--input", str(tmp_path / "x.jsonl"),
                 "--out", str(tmp_path / "out.jsonl")]) == 0  # fmt: skip
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert rows == compute_results(lines, config_from_toml(config_toml))
    drops = [
        (r["labels"]["brand"], r["labels"]["platform"], r["value"])
        for r in rows
        if r["metric"] == "alert"
    ]
    assert drops == [("acme", "bluesky", 1), ("acme", "bluesky", 0)]  # mastodon's stall: no alert
    metrics = {(r["metric"], r["window"]) for r in rows}
    for m in ("mentions", "unique_authors", "potential_reach", "engagements", "engagement_rate",
              "amplification", "share_of_voice", "pageviews", "social_referrals", "share_clicks",
              "share_rate", "social_conversions", "social_conversion_rate"):  # fmt: skip
        assert {(m, "1m"), (m, "1h")} <= metrics
    assert ("referral_yield", "1h") in metrics and ("referral_yield", "1m") not in metrics


def test_dataset_decisions_have_wide_margins() -> None:
    """Every on-time/late decision and every target lookup is minutes away from its edge, so
    reading the stream from several partitions cannot change them; each case occurs."""
    _, lines = generate()
    running, seen, cases = 0, set(), Counter[str]()
    for raw in lines:
        ev = decode(raw)
        if ev is None:
            cases["invalid"] += 1
            continue
        ts = parse_ts(ev["ts"]) or 0
        running = max(running, ts)
        if ev["id"] in seen:
            cases["duplicate"] += 1
            continue
        seen.add(ev["id"])
        for w, size in (("1m", MINUTE), ("1h", 60 * MINUTE)):
            closes = ts - ts % size + size + 600_000
            assert abs(closes - running) > 60_000
            cases[f"late {w}"] += closes <= running
    events, _ = read_stream(lines, 600_000, CONFIG)
    posts = {a.ev["id"]: a for a in events if a.ev["kind"] == "post"}
    for a in events:
        target_id = a.ev.get("target") or a.ev.get("reply_to")
        target = posts.get(target_id or "")
        if target_id is None or target is None or target.ts >= a.ts:
            cases["unseen target" if target is None else "target not earlier"] += bool(target_id)
            continue
        for w in a.on_time:
            closes = a.ts - a.ts % WINDOWS[w] + WINDOWS[w] + 600_000
            assert abs(closes - target.seen_max) > 60_000
            if target.seen_max >= closes:
                cases[f"target after {w} closed"] += 1  # 1m only: margins keep 1h open
            cases["target after engagement"] += target.seen_max > a.seen_max
    assert min(cases.values()) > 0, cases
    assert cases["late 1m"] > 50 and cases["late 1h"] > 20


# ================================================================ revision 2

R2 = config_from_toml(
    """
[[brands]]
name = "acme"
terms = ["acme"]
domains = ["acme.com"]
[brands.accounts]
bluesky = ["did:acme"]

[[sites]]
name = "acme.com"
domains = ["acme.com", "www.acme.com"]

[filters]
exclude_authors = { bluesky = ["did:spam"], x = ["42"] }
"""
)


def r2_results(lines: list[bytes], config: Config = R2) -> dict[tuple[str, ...], float]:
    return {
        (r["metric"], r["window"], r["window_start"][11:16], *r["labels"].values()): r["value"]
        for r in compute_results(lines, config)
    }


# ---------------------------------------------------------------- bounds


def _ev(kind: str = "post", **fields: Any) -> dict[str, Any]:
    if kind == "post":
        base: dict[str, Any] = {"v": 1, "id": "bluesky:p", "kind": "post", "platform": "bluesky",
                                "author": {"id": "u", "handle": None, "followers": 5}, "text": "hi"}  # fmt: skip
    else:
        base = {"v": 1, "id": "web:w", "kind": kind, "platform": "web", "site": "acme.com",
                "url": "https://acme.com/", "session": "s1"}  # fmt: skip
        base |= {"conversion": {"goal": "buy"}, "share_click": {"network": "x"}}.get(kind, {})
    base |= {"ts": at("10:00:00"), "ingested_at": at("10:00:00")}
    return base | fields


def followers(v: Any) -> bytes:
    return (
        b'{"v":1,"id":"bluesky:p","kind":"reaction","platform":"bluesky","ts":"2026-11-20T10:00:00Z","ingested_at":"2026-11-20T10:00:00Z","target":"bluesky:t","author":{"id":"u","followers":%s}}'
        % v
    )


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (_ev(), None),
        (_ev(ts="2026-11-20T10:00:00.123456789Z"), None),  # any fraction length
        (_ev(ts="2026-11-20T10:00:00.Z"), "invalid_ts"),
        (_ev(ts="٢٠٢٦-11-20T10:00:00Z"), "invalid_ts"),  # Arabic-Indic digits
        (_ev(ts="2026-11-20t10:00:00Z"), "invalid_ts"),
        (_ev(ts="2026-11-20T10:00:00z"), "invalid_ts"),
        (_ev(ts="2026-11-20T10:00:00+00:00"), "invalid_ts"),
        (_ev(ts="2026-02-29T10:00:00Z"), "invalid_ts"),  # not a leap year
        (_ev(ts="2028-02-29T10:00:00Z", ingested_at="2028-02-29T10:00:00Z"), None),
        (_ev(ts="2026-11-20T10:00:60Z"), "invalid_ts"),
        (_ev(ts=1763632800), "invalid_ts"),
        (_ev(ingested_at=None), "invalid_ts"),
        ({k: v for k, v in _ev().items() if k != "ingested_at"}, "invalid_ts"),
        ({k: v for k, v in _ev().items() if k != "ts"}, "invalid_ts"),
        (_ev(ingested_at="2026-11-20T09:55:00Z"), None),  # exactly 5 minutes ahead
        (_ev(ingested_at="2026-11-20T09:54:59.999Z"), "future_ts"),
        (_ev(ts="2999-01-01T00:00:00Z"), "future_ts"),
        (_ev(ts="2999-01-01T00:00:00Z", ingested_at="2999-01-01T00:00:00Z"), None),
        (_ev(ts="1999-12-31T23:59:59.999Z"), "out_of_range"),
        (_ev(ts="2000-01-01T00:00:00Z"), None),
        (_ev(author={"id": "u", "followers": 10**12}), None),
        (_ev(author={"id": "u", "followers": 0}), None),
        (_ev(author={"id": "u", "followers": None}), None),
        (_ev(author={"id": "u", "followers": 10**12 + 1}), "out_of_range"),
        (_ev(author={"id": "u", "followers": -1}), "out_of_range"),
        (_ev(author={"id": "u", "followers": "12"}), "out_of_range"),
        (followers(b"12.0"), "out_of_range"),
        (followers(b"1e3"), "out_of_range"),
        (followers(b"12"), None),
        (_ev("conversion"), None),  # value absent: 0
        (_ev("conversion", value=10**12), None),
        (_ev("conversion", value=19.99), None),
        (_ev("conversion", value=-0.01), "out_of_range"),
        (_ev("conversion", value=None), "out_of_range"),
        (_ev("conversion", value="3"), "out_of_range"),
        (json.dumps(_ev("conversion")).replace('"goal"', '"value": 1e400, "goal"'), "out_of_range"),
        (_ev(id="x:1"), "wrong_platform"),
        (_ev(id="bluesky1"), "wrong_platform"),
        (_ev(id="Bluesky:1"), "wrong_platform"),
        (_ev("pageview", url="ftp://acme.com/"), "invalid_url"),
        (_ev("share_click", url="javascript:alert(1)"), "invalid_url"),
        (_ev("conversion", url="acme.com/x"), "invalid_url"),
        (_ev("pageview", url="http://acme.com"), None),
        (_ev(url="ftp://not-web.example/"), None),  # posts: any url
        (_ev("pageview", session=""), "invalid_session"),
        (_ev("pageview", session="s" * 128), None),
        (_ev("pageview", session="s" * 129), "invalid_session"),
        (_ev("pageview", session="a b"), "invalid_session"),
        (_ev("pageview", session="é"), "invalid_session"),
        (_ev("pageview", session="10.0.0.1"), "invalid_session"),
        (_ev("pageview", session="999.999.999.999"), "invalid_session"),
        (_ev("pageview", session="1.2.3"), None),
        (_ev("pageview", session="fe80::1"), "invalid_session"),
        (_ev("pageview", session="::ffff:1.2.3.4"), "invalid_session"),
        (_ev("pageview", session="ab:cd"), None),
        (_ev("share_click", session="ann@example.co.uk"), "invalid_session"),
        (_ev("share_click", session="ann@example"), None),
        (_ev(text="x" * 70_000), "too_large"),
        (_ev(text="x" * 70_000, v=2), "too_large"),  # size first
        (_ev(v=2, ts="bad"), "unsupported_version"),  # fields and types before bounds
        (_ev(ts="bad", id="x:1"), "invalid_ts"),  # the bounds in the table's order
        (b'{"v":1,"value":NaN}', "invalid_json"),
        (b"\xff", "invalid_json"),
    ],
)
def test_reasons(raw: dict[str, Any] | bytes | str, why: str | None) -> None:
    data = raw if isinstance(raw, bytes) else (raw if isinstance(raw, str) else json.dumps(raw)).encode()  # fmt: skip
    assert reason(data, R2) == why


def test_future_bound_is_configurable() -> None:
    late = json.dumps(_ev(ingested_at="2026-11-20T09:58:00Z")).encode()  # 2 minutes ahead
    assert reason(late, R2) is None
    strict = config_from_toml("[processing]\nmax_future_seconds = 60\n")
    assert reason(late, strict) == "future_ts"


def test_a_valid_far_future_event_closes_every_window() -> None:
    lines = [post("a", "10:00:00", "acme")]
    far = _ev(id="bluesky:far", ts="2999-01-01T00:00:00Z", ingested_at="2999-01-01T00:00:00Z")
    lines += [json.dumps(far | {"text": "acme"}).encode(), post("b", "10:00:30", "acme")]
    r = results(lines)
    assert r[("mentions", "1m", "10:00", "acme", "bluesky")] == 1  # b is late for both
    assert r[("mentions", "1h", "10:00", "acme", "bluesky")] == 1
    assert any(r["window_start"].startswith("2999") for r in compute_results(lines, CONFIG))


# ---------------------------------------------------------------- sentiment


@pytest.mark.parametrize(
    ("text", "lang", "compound", "label"),
    [
        ("t", "en", 0.05, "positive"),
        ("t", "en", 0.0499, "neutral"),
        ("t", "en", -0.0499, "neutral"),
        ("t", "en", -0.05, "negative"),
        ("t", "EN", 0.9, "positive"),
        ("t", "en-GB", -0.9, "negative"),
        ("t", None, 0.9, "positive"),
        ("t", "fr", 0.9, "unrated"),
        ("t", "eng", 0.9, "unrated"),
        ("t", "en_US", 0.9, "unrated"),
        ("", "en", 0.9, "unrated"),
        (" ", "en", 0.0, "neutral"),
    ],
)
def test_sentiment_labels(text: str, lang: str | None, compound: float, label: str) -> None:
    assert sentiment({"text": text, "lang": lang}, lambda _: compound) == label


def test_vader_scores_the_dataset_texts_on_the_threshold() -> None:
    score = scorer("vader")
    assert (score(POSITIVE_005), score(NEGATIVE_005)) == (0.05, -0.05)
    assert sentiment({"text": POSITIVE_005, "lang": "en"}, score) == "positive"
    assert sentiment({"text": NEGATIVE_005, "lang": "en"}, score) == "negative"
    with pytest.raises(ValueError):
        scorer("textblob")


def test_mentions_by_sentiment_and_net_sentiment() -> None:
    lines = [
        post("p1", "10:00:01", POSITIVE_005, lang="en"),
        post("p2", "10:00:02", "Acme is great", lang="EN"),
        post("p3", "10:00:03", NEGATIVE_005, lang="en-GB"),
        post("p4", "10:00:04", "acme", lang=None),  # neutral
        post("p5", "10:00:05", "Acme ist super", lang="de"),
        post("p6", "10:00:06", "", links=["https://acme.com/"]),
        post("p7", "10:00:07", "I love acme", author="did:acme"),  # own: no mention, no label
        engage("reshare", "r1", "10:00:08", "p2"),  # a mention, but no text: no label
    ]
    r = r2_results(lines)
    got = {k[5]: v for k, v in r.items() if k[:2] == ("mentions_by_sentiment", "1m")}
    assert got == {"positive": 2, "negative": 1, "neutral": 1, "unrated": 2}
    assert r[("net_sentiment", "1h", "10:00", "acme", "bluesky")] == 1 / 3
    assert r[("mentions", "1m", "10:00", "acme", "bluesky")] == 7
    only_neutral = r2_results([post("p", "10:00:00", "acme")])
    assert not any(k[0] == "net_sentiment" for k in only_neutral)  # positive + negative = 0


# ---------------------------------------------------------------- top lists


def test_top_lists_rank_ten_with_ties() -> None:
    lines = []
    for k in range(12):  # targets t00..t11: t05 gets 3 engagements, the others 1
        lines.append(post(f"t{k:02d}", f"10:00:{k:02d}", "acme", author=f"a{k:02d}",
                          followers=None if k < 2 else 100 * (k % 3), links=[
                              f"https://acme.com/{k % 11}#x", f"https://acme.com/{k % 11}#y"]))  # fmt: skip
    for k in range(12):
        for j in range(3 if k == 5 else 1):
            lines.append(engage("reaction", f"e{k}-{j}", f"10:01:{k:02d}", f"t{k:02d}", author=f"f{j}"))  # fmt: skip
    lines.append(engage("reaction", "u1", "10:02:00", "never-seen", "did:acme"))
    lines.append(post("again", "10:03:00", "acme", author="a09", followers=150))
    rows = [r for r in compute_results(lines, R2) if r["metric"].startswith("top_")]
    assert all(r["window"] == "1h" and isinstance(r["labels"]["rank"], str) for r in rows)

    def top(metric: str, key: str) -> list[tuple[str, str, int]]:
        got = [(r["labels"]["rank"], r["labels"][key], r["value"]) for r in rows if r["metric"] == metric]  # fmt: skip
        return sorted(got, key=lambda e: int(e[0]))

    posts = top("top_posts", "post")
    assert posts[:3] == [("1", "bluesky:t05", 3), ("2", "bluesky:never-seen", 1), ("3", "bluesky:t00", 1)]  # fmt: skip
    assert len(posts) == 10 and posts[-1] == ("10", "bluesky:t08", 1)
    # followers first (a02/a05/a08/a11 200, a09 150 after its second mention, a04/a07/a10
    # 100, the rest 0 or null), then value, then id
    assert [a for _, a, _ in top("top_authors", "author")] == [
        "a02", "a05", "a08", "a11", "a09", "a04", "a07", "a10", "a00", "a01"]  # fmt: skip
    links = top("top_links", "link")
    assert links[0] == ("1", "https://acme.com/0", 2) and links[1] == ("2", "https://acme.com/1", 1)
    assert len(links) == 10 and all(v <= 2 for *_, v in links)  # one post counts once per link


# ---------------------------------------------------------------- excluded authors


def test_excluded_authors_count_for_nothing() -> None:
    lines = [
        post("s1", "10:00:00", "acme", author="did:spam", followers=10**6),
        engage("reaction", "e1", "10:00:10", "s1"),  # target unknown: no engagement
        engage("reshare", "e2", "10:00:20", "s1", "did:acme"),  # through its author id only
        engage("reaction", "e3", "10:00:30", "s1", author="did:spam"),
        post(
            "s2", "10:00:40", "acme", author="42", platform="mastodon"
        ),  # 42 is excluded on x only
        post("ahead", "10:40:00", "acme", author="did:spam"),  # would close the 10:00 minute
        post("ok", "10:01:00", "acme"),
        post("s1", "10:02:00", "acme", author="u5"),  # same id as an excluded post: a duplicate
    ]
    r = r2_results(lines)
    assert {k: v for k, v in r.items() if k[0] in ("mentions", "engagements") and k[1] == "1m"} == {
        ("mentions", "1m", "10:00", "acme", "bluesky"): 1,  # e2
        ("engagements", "1m", "10:00", "acme", "bluesky"): 1,
        ("mentions", "1m", "10:00", "acme", "mastodon"): 1,
        ("mentions", "1m", "10:01", "acme", "bluesky"): 1,
    }
    events, last = read_stream(lines, 600_000, R2)
    assert last == parse_ts(at("10:02:00"))


# ---------------------------------------------------------------- SMO r2


@pytest.mark.parametrize(
    ("referrer", "utm", "network", "paid"),
    [
        ("android-app://com.twitter.android", None, "x", False),
        ("android-app://com.facebook.lite/", None, "facebook", False),
        ("android-app://com.linkedin.android/feed/x", None, "linkedin", False),
        ("android-app://com.instagram.barcelona", None, "threads", False),
        ("android-app://com.google.android.gm", None, None, False),
        (
            "android-app://com.twitter.android",
            ("reddit", "social"),
            "reddit",
            False,
        ),  # step 1 first
        (None, ("facebook", "paid_social"), "facebook", True),
        (None, ("linkedin", "paid-social"), "linkedin", True),
        (None, ("x", "paidsocial"), "x", True),
        ("https://www.facebook.com/", ("facebook", "cpc"), "facebook", True),
        ("https://t.co/a", ("x", "ppc"), "x", True),
        ("https://www.reddit.com/", ("x", "paidxyz"), "reddit", True),
        (None, ("facebook", "cpc"), None, False),
        ("https://t.co/a", ("newsletter", "email"), "x", False),
        ("https://www.acme.com/", ("x", "paid_social"), None, False),
    ],
)
def test_app_referrers_and_paid_social(
    referrer: str | None, utm: tuple[str, str] | None, network: str | None, paid: bool
) -> None:
    fields: dict[str, Any] = {"referrer": referrer, "utm": utm and {"source": utm[0], "medium": utm[1]}}  # fmt: skip
    r = r2_results([web("pageview", "1", "10:00:00", **fields)])
    assert {k[4] for k in r if k[0] == "social_referrals"} == ({network} if network else set())
    assert {k[4] for k in r if k[0] == "paid_social_referrals"} == ({network} if paid else set())


def test_social_conversion_value() -> None:
    lines = [
        web("pageview", "1", "10:00:00", "s1", referrer="https://t.co/a"),
        web("conversion", "2", "10:01:00", "s1", goal="buy", value=5),
        web("conversion", "3", "10:01:30", "s1", goal="buy", value=0.1),
        web("conversion", "4", "10:02:00", "s1", goal="buy", value=0.2),
        web("pageview", "5", "10:03:00", "s2", referrer="android-app://com.reddit.frontpage"),
        web("conversion", "6", "10:04:00", "s2", goal="signup"),
        web("conversion", "7", "10:04:00", "s3", goal="buy", value=50),  # no pageview: nothing
    ]
    r = r2_results(lines)
    assert r[("social_conversion_value", "1h", "10:00", "acme.com", "x")] == 5.3  # fsum
    assert r[("social_conversion_value", "1m", "10:01", "acme.com", "x")] == 5.1
    value = r[("social_conversion_value", "1m", "10:04", "acme.com", "reddit")]
    assert value == 0.0 and isinstance(value, float)
    assert {k for k in r if k[0] == "social_conversion_value"} == {
        (*k[:1], *k[1:]) for k in ((("social_conversion_value",) + k[1:]) for k in r if k[0] == "social_conversions")
    }  # fmt: skip


# ---------------------------------------------------------------- spikes and drops


def test_spike_fires_at_three_times_the_baseline_and_the_floor() -> None:
    base = {m: 2 for m in range(200)}  # B = 30
    spike = base | {m: 2 + 60 // 5 for m in range(150, 155)}  # x at T=155: 30 + 60 = 90 = 3 B
    # T=155 fires; x < 1.5 B = 45 once the burst leaves: T=168 x = 26 + 24 ... -> resolves
    rows = alerts(spike, name="MentionSpike")
    assert rows[0] == (155, 1) and rows[1][1] == 0
    assert alerts(base | {m: 2 + 59 // 5 for m in range(150, 155)}, name="MentionSpike") == []
    # the floor: one count every 3 minutes (B = 40 / 8 = 5), then 1 a minute: at T=165
    # x = 15 = 3 B, above NegativeSentimentSpike's floor (10), below MentionSpike's (30)
    low = {m: 1 if m >= 150 or m % 3 == 0 else 0 for m in range(170)}
    assert alerts(low, name="NegativeSentimentSpike", last=170) == [(165, 1)]
    assert alerts(low, name="MentionSpike", last=170) == []


def test_spikes_are_never_held_back_and_zero_baseline() -> None:
    eng = {m: 0 for m in range(160)} | {160: 30}
    assert alerts(eng, active={160}, name="MentionSpike", last=175) == [(161, 1)]  # B = 0
    # x < 1.5 * 0 cannot hold: it stays firing until the burst is in the baseline (T=176:
    # B = 30 / 8, x = 0) - and the platform stalled all along does not matter
    assert alerts(eng, active={160}, name="MentionSpike", last=300) == [(161, 1), (176, 0)]


def test_firing_drop_resolves_only_where_the_baseline_is_above_zero() -> None:
    eng = {m: 4 if m < 150 else 0 for m in range(400)}
    got = alerts(eng, last=400)
    assert got == [(158, 1)]  # B falls to 0 with x at 0: never resolves


def test_drop_held_back_when_stalled_at_any_boundary_of_the_last_15_minutes() -> None:
    eng = {m: 4 if m < 150 else 0 for m in range(240)}
    every = set(range(240))
    # stalled at T when no event in [T-5m, T): a gap [150, 155) makes T=155 stalled,
    # which holds the drop back at every T in [155, 169]: it fires at 170
    assert alerts(eng, every - set(range(150, 155)), last=240)[0] == (170, 1)
    # a 4-minute gap never stalls: the drop fires as without a gap
    assert alerts(eng, every - set(range(150, 154)), last=240)[0] == (158, 1)


def test_alert_rules_come_from_the_configuration() -> None:
    eng = {m: 4 if m < 150 or m >= 165 else 1 for m in range(240)}  # x bottoms at 15 < 30
    assert alerts(eng)[0][1] == 1
    assert alerts(eng, rule=(0.25, 20, 0.8)) == []  # 15 < 0.25 * 60 is false
    assert alerts(eng, rule=(0.5, 61, 0.8)) == []  # the floor
    cfg = config_from_toml("[alerts.EngagementDrop]\nfactor = 0.25\n")
    assert cfg.alert_rule("EngagementDrop") == (0.25, 20.0, 0.8)


def test_social_referral_drop_watches_the_web_platform() -> None:
    refs = {m: 4 if m < 150 else 0 for m in range(240)}
    assert alerts(refs, name="SocialReferralDrop", last=240)[0] == (158, 1)
    stalled_web = set(range(240)) - set(range(150, 156))
    assert alerts(refs, stalled_web, name="SocialReferralDrop", last=240)[0] == (171, 1)


# ---------------------------------------------------------------- the r2 dataset


def test_r2_dataset_covers_every_rule() -> None:
    config_toml, lines = generate_r2()
    assert generate_r2()[1] == lines
    cfg = config_from_toml(config_toml)
    reasons = Counter(reason(x, cfg) for x in lines)
    assert set(reasons) >= BOUNDS_REASONS | {None, "invalid_json", "missing_field"}
    rows = compute_results(lines, cfg)
    fired = [(r["window_start"][11:16], r["labels"]["alertname"], r["value"]) for r in rows if r["metric"] == "alert"]  # fmt: skip
    assert fired == [
        ("10:33", "MentionSpike", 1), ("10:47", "MentionSpike", 0),
        ("10:53", "NegativeSentimentSpike", 1), ("10:56", "EngagementDrop", 1),
        ("11:08", "NegativeSentimentSpike", 0), ("11:08", "SocialReferralDrop", 1),
        ("11:14", "EngagementDrop", 0), ("11:23", "MentionSpike", 1),
        ("11:24", "SocialReferralDrop", 0), ("11:37", "MentionSpike", 0),
        ("11:38", "SocialReferralDrop", 1), ("11:44", "SocialReferralDrop", 0),
    ]  # fmt: skip
    metrics = {r["metric"] for r in rows}
    assert metrics >= {"mentions_by_sentiment", "net_sentiment", "top_posts", "top_authors",
                       "top_links", "paid_social_referrals", "social_conversion_value"}  # fmt: skip
    labels = {(r["metric"], v) for r in rows for v in r["labels"].values()}
    assert {("mentions_by_sentiment", s) for s in ("positive", "negative", "neutral", "unrated")} <= labels  # fmt: skip
    assert ("top_posts", "10") in labels and ("top_links", "10") in labels
    nets = {r["labels"]["network"] for r in rows if r["metric"] == "paid_social_referrals"}
    assert nets >= {"facebook", "linkedin", "x", "reddit", "instagram"}


def _alert_rows(config_toml: str, lines: list[bytes], extra: str = "") -> list[Row]:
    rows = compute_results(lines, config_from_toml(config_toml + extra))
    return [r for r in rows if r["metric"] == "alert"]


def test_r2_dataset_hits_thresholds_exactly_and_needs_its_overrides() -> None:
    config_toml, lines = generate_r2()
    now = _alert_rows(config_toml, lines)

    def names(rows: list[Row]) -> list[tuple[str, str, int]]:
        return [(r["window_start"][11:16], r["labels"]["alertname"], r["value"]) for r in rows]

    # x = 3 B exactly at 10:33: a hair more factor and it does not fire then
    assert ("10:33", "MentionSpike", 1) in names(now)
    spike = config_toml.replace("floor = 25\n", "floor = 25\nfactor = 3.0000001\n", 1)
    assert ("10:33", "MentionSpike", 1) not in names(_alert_rows(spike, lines))
    # x = 0.75 B exactly at 11:23 while firing: a hair less resolve factor resolves there
    drop = config_toml.replace("resolve = 0.75", "resolve = 0.7499999")
    assert ("11:23", "SocialReferralDrop", 0) in names(_alert_rows(drop, lines))
    # the defaults: no NegativeSentimentSpike (factor 2 configured), a later resolve
    defaults = config_toml[: config_toml.index("[alerts.MentionSpike]")]
    plain = names(_alert_rows(defaults, lines))
    assert not any(n == "NegativeSentimentSpike" for _, n, _ in plain)
    assert ("11:24", "SocialReferralDrop", 0) not in plain


def test_r2_dataset_mastodon_stall_holds_a_drop_back() -> None:
    config_toml, lines = generate_r2()
    cfg = config_from_toml(config_toml)
    events, last = read_stream(lines, 600_000, cfg)
    rows = compute_results(lines, cfg)
    series = {parse_ts(r["window_start"]) or 0: int(r["value"]) for r in rows
              if r["metric"] == "engagements" and r["window"] == "1m" and r["labels"] == {"brand": "acme", "platform": "mastodon"}}  # fmt: skip
    alert = ALERTS[0]
    first = min(a.ts for a in events)
    labels = (("brand", "acme"), ("platform", "mastodon"))
    always = {"mastodon": {m - m % MINUTE for m in range(first - first % MINUTE, (last or 0) + 1, MINUTE)}}  # fmt: skip
    # without the stall it would fire; with it, no mastodon alert
    assert evaluate(alert, cfg.alert_rule(alert.name), {labels: series}, always, first, last or 0)
    assert not any(
        r["metric"] == "alert" and r["labels"].get("platform") == "mastodon" for r in rows
    )
