"""Parse throughput of each source's pure parse function on the shared fixtures.

Usage: ``.venv/bin/python bench/ingest_parse.py [source ...] [--seconds N]``

Each registry entry is ``name -> (parse, load)``: ``load()`` returns the fixture payloads
(bytes, as they arrive from the platform) and ``parse(payload)`` returns the canonical
events of one payload (raising ``InvalidEvent`` for a malformed one). The payloads are
parsed in a loop for about ``--seconds``; events/s counts canonical events produced.
To add a source: write ``_load_<name>`` and ``_parse_<name>`` here and register them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"
if not FIXTURES.exists():
    FIXTURES = Path("/work/shared/fixtures")

Parse = Callable[[bytes], Sequence[Any]]
Entry = tuple[Callable[[], Parse], Callable[[], list[bytes]]]


def _lines(*names: str) -> list[bytes]:
    out: list[bytes] = []
    for name in names:
        out += [ln for ln in (FIXTURES / name).read_bytes().splitlines() if ln.strip()]
    return out


# --- bluesky ---------------------------------------------------------------------------
def _bluesky_parse() -> Parse:
    from ingest.sources.bluesky import parse_jetstream

    return lambda raw: parse_jetstream(raw)


def _bluesky_load() -> list[bytes]:
    return _lines(
        "bluesky/jetstream_v1_capture_2026-07-04_152events.jsonl",
        "bluesky/jetstream_v1_golden_10events.jsonl",
        "bluesky/jetstream_v1_selected_examples.jsonl",
    )


# --- mastodon --------------------------------------------------------------------------
def _mastodon_parse() -> Parse:
    from ingest.sources.mastodon import parse_sse_event

    return lambda raw: parse_sse_event(raw)


def _mastodon_load() -> list[bytes]:
    """Every recorded SSE message, plus the recorded statuses sent as ``update`` messages."""
    import json

    from ingest.sources.mastodon import split_sse_messages

    out: list[bytes] = []
    for path in sorted((FIXTURES / "mastodon").glob("*.sse")):
        out += split_sse_messages(path.read_bytes())
    statuses = [
        json.loads((FIXTURES / "mastodon" / name).read_text())
        for name in ("mastodonpy_status_reblog_response.json", "mastodonpy_status_with_quote.json")
    ]
    statuses += json.loads((FIXTURES / "mastodon" / "mastodonpy_hashtag_timeline.json").read_text())
    out += [b"event: update\ndata: " + json.dumps(s).encode() for s in statuses]
    return out


# --- x ---------------------------------------------------------------------------------
def _x_parse() -> Parse:
    from ingest.sources.x import parse_stream_line

    return lambda raw: parse_stream_line(raw)


def _x_load() -> list[bytes]:
    return _lines("x/twarc_filtered_stream_2021-04-01_9lines.jsonl")


# --- reddit ----------------------------------------------------------------------------
def _reddit_parse() -> Parse:
    import time

    from ingest.sources.reddit_parse import parse_listing

    return lambda raw: parse_listing(raw, time.time()).events


def _reddit_load() -> list[bytes]:
    return [
        p.read_bytes() for p in sorted((FIXTURES / "reddit").glob("*.json")) if "meta" not in p.name
    ]


# --- hackernews ------------------------------------------------------------------------
def _hackernews_parse() -> Parse:
    import time

    from ingest.sources.hackernews_parse import parse_firebase_item, parse_item_tree, parse_search

    def parse(raw: bytes) -> Sequence[Any]:
        now = time.time()
        if raw.startswith(b'{"hits"'):
            return parse_search(raw, now).events
        if b'"children"' in raw:
            return parse_item_tree(raw, now)
        ev = parse_firebase_item(raw, now)
        return [ev] if ev is not None else []

    return parse


def _hackernews_load() -> list[bytes]:
    """Algolia search answers (the 4 files and the 26 recorded replies), the item tree and
    the Firebase items, each as the bytes the API sends."""
    import json

    hn = FIXTURES / "hackernews"
    out = [
        json.dumps(json.loads(p.read_bytes())).encode()
        for p in sorted(hn.glob("algolia_2014_search*.json"))
    ]
    for rec in json.loads((hn / "algolia_fixtures_2014_node-hacker-news-api.json").read_bytes()):
        if "hits" in rec["reply"]:
            out.append(json.dumps(rec["reply"]).encode())
    out.append((hn / "algolia_2014_items_17.json").read_bytes())
    out += [p.read_bytes() for p in sorted(hn.glob("firebase_item_*.json"))]
    return out


# --- rss -------------------------------------------------------------------------------
RSS_FIXTURES = (
    Path(__file__).resolve().parent.parent / "tests" / "ingest" / "sources" / "rss_fixtures"
)


def _rss_parse() -> Parse:
    import time

    from ingest.sources.rss_parse import parse_feed

    return lambda raw: parse_feed(raw, "https://feeds.example/feed", time.time()).events


def _rss_load() -> list[bytes]:
    """No RSS fixture is shipped: the hand-written RSS 2.0 and Atom feeds of the tests."""
    return [p.read_bytes() for p in sorted(RSS_FIXTURES.glob("*")) if p.suffix in (".rss", ".atom")]


REGISTRY: dict[str, Entry] = {
    "bluesky": (_bluesky_parse, _bluesky_load),
    "mastodon": (_mastodon_parse, _mastodon_load),
    "x": (_x_parse, _x_load),
    "reddit": (_reddit_parse, _reddit_load),
    "hackernews": (_hackernews_parse, _hackernews_load),
    "rss": (_rss_parse, _rss_load),
}


def bench(name: str, seconds: float) -> tuple[int, int, float, float]:
    """(payloads per pass, events per pass, events/s, payloads/s)."""
    from ingest.events import InvalidEvent

    make_parse, load = REGISTRY[name]
    parse = make_parse()
    payloads = load()

    def one_pass() -> int:
        n = 0
        for raw in payloads:
            try:  # noqa: SIM105 - cheaper than contextlib.suppress in the loop
                n += len(parse(raw))
            except InvalidEvent:
                pass
        return n

    per_pass = one_pass()  # warm-up
    events = passes = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        events += one_pass()
        passes += 1
    rate = events / elapsed if elapsed else 0.0
    return len(payloads), per_pass, rate, passes * len(payloads) / elapsed if elapsed else 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("sources", nargs="*", help=f"default: all of {', '.join(REGISTRY)}")
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args(argv)
    names = args.sources or list(REGISTRY)
    print(f"{'source':<12} {'payloads':>8} {'events':>7} {'events/s':>12} {'payloads/s':>12}")
    for name in names:
        try:
            payloads, per_pass, rate, prate = bench(name, args.seconds)
        except ImportError as exc:
            print(f"{name:<12} not available ({exc})")
            continue
        print(f"{name:<12} {payloads:>8} {per_pass:>7} {rate:>12,.0f} {prate:>12,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
