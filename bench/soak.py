"""Soak benchmark: a day of traffic through one worker, its memory hour by hour (the
worker and its gate process together).

    .venv/bin/python bench/soak.py --bootstrap 127.0.0.1:19092 [--events 5000000]

Generates 24 hours of event time (60% social from 1,000,000 distinct authors, 40% website
from 500,000 sessions; posts, reactions, reshares, replies, pageviews, share clicks and
conversions), loads it into ``soak.events``, then plays it at full speed through one
``ripple worker``. Once per hour of event time made final (the rollup's closed 1m
windows) it prints the worker's resident memory; at the end the peak, and the peak of the last 6 hours
against hours 6-12 (flat means the state does not grow with the day's traffic).
Targets (issue 9): peak RSS <= 1 GiB, last-6-hours peak within 10% of hours 6-12.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.worker_metrics import late_events, windows_closed  # noqa: E402
from deploy.commands.replay import free_port  # noqa: E402
from deploy.history import DEMO_CONFIG  # noqa: E402
from deploy.stack.proctree import tree_memory_mib  # noqa: E402
from ingest.config import load_config  # noqa: E402
from ingest.events import format_ts  # noqa: E402
from processors.history.batch_producer import produce_batched  # noqa: E402
from processors.history.replay import collect_results, request_flush  # noqa: E402
from processors.job.topology import delete_namespace, ensure_topics  # noqa: E402

NS = "soak"
START = 1_763_596_800.0  # 2025-11-20T00:00:00Z
BRANDS = ("acme", "globex", "initech")
PLATFORMS = ("bluesky", "mastodon", "reddit", "x")
WORDS = ("love", "great", "terrible", "new", "shoes", "launch", "slow", "fast", "meh", "wow")
NETWORK_REFERRERS = ("https://t.co/x", "https://bsky.app/p", "https://www.reddit.com/r/a",
                     "https://news.ycombinator.com/", None, None, "https://acme.com/")  # fmt: skip


def generate(
    n_events: int, authors: int, sessions: int, seed: int = 5
) -> Iterator[tuple[bytes, int, bytes]]:
    """``n_events`` canonical events over 24 hours of event time, in time order, each with
    its partition key (as ``ingest.producer.partition_key``) and timestamp (ms)."""
    rnd = random.Random(seed)
    step = 86400.0 / n_events
    recent: list[str] = []  # recent post ids (targets)
    for i in range(n_events):
        t = START + i * step
        ts = format_ts(t)
        ing = format_ts(t + 1.0)
        if rnd.random() < 0.6:
            platform = PLATFORMS[i % 4]
            author = {"id": f"{platform}-u{rnd.randrange(authors)}", "handle": None,
                      "followers": rnd.randrange(5000)}  # fmt: skip
            r = rnd.random()
            base = {"v": 1, "platform": platform, "ts": ts, "ingested_at": ing, "author": author}
            if r < 0.4 or not recent:
                pid = f"{platform}:p{i}"
                text = f"{rnd.choice(BRANDS)} {rnd.choice(WORDS)} {rnd.choice(WORDS)}"
                ev = {**base, "id": pid, "kind": "post", "text": text, "lang": "en",
                      "hashtags": [], "links": [f"https://acme.com/p/{i % 50}"]}  # fmt: skip
                if r < 0.05 and recent:
                    ev["reply_to"] = rnd.choice(recent)
                recent.append(pid)
                if len(recent) > 2000:
                    del recent[:1000]
            elif r < 0.85:
                ev = {**base, "id": f"{platform}:l{i}", "kind": "reaction",
                      "target": rnd.choice(recent)}  # fmt: skip
            else:
                ev = {**base, "id": f"{platform}:r{i}", "kind": "reshare",
                      "target": rnd.choice(recent)}  # fmt: skip
        else:
            session = f"s{rnd.randrange(sessions)}"
            base = {"v": 1, "platform": "web", "ts": ts, "ingested_at": ing, "site": "acme.com",
                    "url": f"https://acme.com/p/{i % 50}", "session": session}  # fmt: skip
            r = rnd.random()
            if r < 0.85:
                ev = {**base, "id": f"web:pv{i}", "kind": "pageview",
                      "referrer": rnd.choice(NETWORK_REFERRERS)}  # fmt: skip
            elif r < 0.95:
                ev = {**base, "id": f"web:sc{i}", "kind": "share_click",
                      "network": rnd.choice(("x", "facebook", "bluesky"))}  # fmt: skip
            else:
                ev = {**base, "id": f"web:cv{i}", "kind": "conversion", "goal": "buy",
                      "value": round(rnd.random() * 100, 2)}  # fmt: skip
        kind = ev["kind"]
        if kind in ("reaction", "reshare"):
            key = str(ev["target"])
        elif platform_of(ev) == "web":
            key = f"{ev['site']}|{ev['session']}"
        else:
            key = str(ev["id"])
        yield key.encode(), int(t * 1000), orjson.dumps(ev)


def platform_of(ev: dict[str, object]) -> str:
    return str(ev["platform"])


def load(bootstrap: str, events: Iterator[tuple[bytes, int, bytes]]) -> int:
    """Produce straight to ``soak.events`` (no per-line validation: the generator's own)."""
    return produce_batched(bootstrap, f"{NS}.events", ((k, v, ts) for k, ts, v in events))


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--authors", type=int, default=1_000_000)
    ap.add_argument("--sessions", type=int, default=500_000)
    ap.add_argument("--partitions", type=int, default=6, help="the stateful stage's partitions")
    ap.add_argument("--events-partitions", type=int, default=1,
                    help="partitions of soak.events (default 1: in order, so no event is late "
                         "and every one reaches the state)")  # fmt: skip
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ripple-soak-"))
    cfg = tmp / "soak.toml"
    cfg.write_text(f'[kafka]\nbootstrap = "{args.bootstrap}"\npartitions = {args.partitions}\n\n'
                   + DEMO_CONFIG)  # fmt: skip
    delete_namespace(args.bootstrap, NS)
    ensure_topics(args.bootstrap, NS, args.partitions, args.events_partitions)
    t = time.perf_counter()
    n = load(args.bootstrap, generate(args.events, args.authors, args.sessions))
    print(
        f"loaded {n:,} events (24 h of event time) in {time.perf_counter() - t:.0f} s", flush=True
    )
    request_flush(args.bootstrap, NS)
    port = free_port()
    cmd = [sys.executable, "-m", "deploy.cli", "worker", "--config", str(cfg), "--namespace", NS,
           "--web-port", str(port), "--state-dir", str(tmp / "state"), "--loglevel", "warning"]  # fmt: skip
    worker = subprocess.Popen(cmd, stdout=(tmp / "worker.log").open("wb"), stderr=subprocess.STDOUT)
    per_hour: dict[int, float] = {}
    done = threading.Event()

    # Progress is the rollup's: 1m windows made final (the gate's watermark runs hours ahead
    # of resolve when the input is read at full speed). Past the last window the watermark
    # can close, the end-of-replay flush closes every open window at once: reported apart.
    lateness_minutes = load_config(cfg).processing.allowed_lateness_seconds // 60
    flush_from = 24 * 60 - 2 - lateness_minutes

    def sample() -> None:
        while not done.is_set() and worker.poll() is None:
            closed = windows_closed(port, "1m")
            rss = tree_memory_mib(worker.pid)
            if closed is not None:
                hour = 24 if closed >= flush_from else int(closed // 60)
                if rss > per_hour.get(hour, 0):
                    if hour not in per_hour:
                        print(f"  event hour {hour:2d}: RSS {rss:6.0f} MiB", flush=True)
                    per_hour[hour] = rss
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.perf_counter()
    sampler.start()
    try:
        collect_results(args.bootstrap, NS, timeout=7200, alive=lambda: worker.poll() is None)
        took = time.perf_counter() - started
        peak = tree_memory_mib(worker.pid, "VmHWM")
        late = late_events(port)
    finally:
        done.set()
        worker.terminate()
        worker.wait(60)
    print(f"played {n:,} events in {took:.0f} s ({n / took:,.0f} events/s)")
    print("peak RSS per hour of event time (MiB): "
          + " ".join(f"{h}:{v:.0f}" for h, v in sorted(per_hour.items()) if h < 24))  # fmt: skip
    print(f"end-of-replay flush (every window closes at once): {per_hour.get(24, 0):.0f} MiB")
    shown = ", ".join(f"{w} {v:,.0f}" for w, v in sorted(late.items()))
    print(f"late events (they never reach the state): {shown or 'none'}")
    print(f"peak RSS: {peak:.0f} MiB (target <= 1024)")
    mid = max((v for h, v in per_hour.items() if 6 <= h < 12), default=float("nan"))
    last = max((v for h, v in per_hour.items() if 18 <= h < 24), default=float("nan"))
    print(f"peak hours 6-12: {mid:.0f} MiB, last 6 hours: {last:.0f} MiB "
          f"({(last / mid - 1) * 100:+.1f}%, target within 10%)")  # fmt: skip
    print(f"worker log: {tmp / 'worker.log'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
