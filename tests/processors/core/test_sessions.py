"""Session expiry in a partition's state: a prune drops exactly the pageviews older than
the attribution horizon, whichever sessions hold them, and a conversion still finds the
first touch that is within it."""

from __future__ import annotations

import orjson

from ingest.config import Config
from ingest.events import format_ts
from processors.core.compiled import Compiled
from processors.core.resolve import PRIMARY, PartitionState, Settings

T0 = 1_763_596_800.0  # 2025-11-20T00:00:00Z


def _pageview(i: int, ts: float, session: str, referrer: str | None = None) -> bytes:
    return orjson.dumps({"v": 1, "id": f"web:pv-{i}", "kind": "pageview", "platform": "web",
                         "ts": format_ts(ts), "ingested_at": format_ts(ts), "site": "shop",
                         "url": "https://shop.example/", "referrer": referrer,
                         "session": session})  # fmt: skip


def _state() -> PartitionState:
    c = Compiled(Config())
    return PartitionState(c.tracker, c.classifier, Settings(lateness=0, attribution=1800), c.scorer)


def test_a_prune_drops_only_pageviews_older_than_the_horizon() -> None:
    st = _state()
    # Three sessions; "a" has an old and a new pageview, "b" only old ones, "c" only new.
    views = [(0, "a"), (10, "b"), (20, "b"), (7000, "a"), (7100, "c")]
    for i, (offset, session) in enumerate(views):
        st.add(PRIMARY, 0, T0 + offset, _pageview(i, T0 + offset, session))
    # Horizon = prune boundary - lateness - 1h - attribution: T0 + 9000 - 5400 = T0 + 3600.
    st.advance(T0 + 9000)
    assert {k[1]: [pv[0] - T0 for pv in v] for k, v in st.sessions.items()} == {
        "a": [7000],
        "c": [7100],
    }
    st.add(PRIMARY, 0, T0 + 12_950, _pageview(9, T0 + 12_950, "d"))
    st.advance(T0 + 13_000)  # boundary T0 + 12900: horizon T0 + 7500, "a" and "c" go too
    assert [k[1] for k in st.sessions] == ["d"]
    assert len(st._session_expiry) == 1  # the heap holds what the sessions hold, no more


def test_a_session_seen_again_is_kept_for_its_newer_pageview() -> None:
    st = _state()
    st.add(PRIMARY, 0, T0, _pageview(1, T0, "s", "https://www.reddit.com/r/x"))
    st.add(PRIMARY, 0, T0 + 5000, _pageview(2, T0 + 5000, "s"))
    st.advance(T0 + 9300)  # boundary T0 + 9300 → horizon T0 + 3900: the first one goes
    assert [pv[0] - T0 for pv in st.sessions[("shop", "s")]] == [5000]
