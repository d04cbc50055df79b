"""The demo: a generated history played into the LIVE namespace fast, then live traffic.

The history (deploy/history.py) ends at the moment the demo starts, so once it has been
played the pipeline looks like one that has been running for hours: fresh data, a full
trailing baseline, and an engagement drop an hour ago that the stream-side EngagementDrop
reports. It is played paced by event time (``speed`` times faster than real time) so that
the gate sees the partitions advance together and the dashboards fill within two minutes;
from the moment it catches up with the wall clock, events flow in real time, and the
website's events then go through the running collector (``POST /e``) as a browser would
send them.
"""

from __future__ import annotations

import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from kafka import KafkaConsumer, TopicPartition

from deploy.history import DEMO_TOML, HistorySpec, generate
from ingest.events import parse_ts
from ingest.kafka_client import client_options
from ingest.topics import Topics

if TYPE_CHECKING:
    from deploy.stack.local import LocalStack

DEFAULT_CONFIG = DEMO_TOML
HOURS = 4.0  # of history, ending now
DROP_AT_HOURS = 3.0  # acme's engagement on bluesky falls to 10% from here on
# Enough engagement per brand and platform that the noise of the smallest brand (initech,
# ~5 a minute per platform) stays clear of EngagementDrop's threshold: only the planned drop
# fires (checked for the demo's seed well past the drop).
SOCIAL_PER_MINUTE = 120.0
DROP = ("EngagementDrop", "acme", "bluesky")


@dataclass(frozen=True)
class DemoPlan:
    """What to play: the history from ``spec.start`` to ``live_from`` (the demo's start),
    then real-time traffic until ``until`` (``inf``: until the feeder is stopped).
    ``replay_history`` is false when the namespace already holds events of that period (a
    second demo): they would all be late, so only live traffic is sent."""

    spec: HistorySpec
    live_from: float
    until: float
    replay_history: bool = True


def make_plan(
    now: float,
    *,
    hours: float = HOURS,
    drop_at_hours: float = DROP_AT_HOURS,
    live_minutes: float = 2.0,
    social_per_minute: float = SOCIAL_PER_MINUTE,
    web_per_minute: float = 40.0,
    replay_history: bool = True,
) -> DemoPlan:
    """``live_minutes`` = 0: the history only. Otherwise live traffic until stopped (the
    generated stream reaches half an hour beyond ``live_minutes``)."""
    if not 0 < drop_at_hours < hours:
        raise ValueError("the drop must lie inside the history (0 < drop-at < hours)")
    start = math.floor(now / 60) * 60 - hours * 3600
    live = max(0.0, live_minutes)
    spec = HistorySpec(
        start=start,
        hours=hours + ((live + 30) / 60 if live else 1 / 60),
        social_per_minute=social_per_minute,
        web_per_minute=web_per_minute,
        drop_at_hours=drop_at_hours,
        id_prefix=f"demo{int(start)}-",
    )
    return DemoPlan(spec, now, math.inf if live else now, replay_history)


def history_present(bootstrap: str, namespace: str, since: float) -> bool:
    """Whether ``<ns>.events`` holds records stamped at or after ``since`` (event time)."""
    topic = Topics(namespace).events
    consumer = KafkaConsumer(**client_options(bootstrap, "kafka-python"), enable_auto_commit=False)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        found = consumer.offsets_for_times(
            {TopicPartition(topic, p): int(since * 1000) for p in parts}
        )
    finally:
        consumer.close()
    return any(v is not None for v in found.values())


class CatchUpPacer:
    """Event time runs ``factor`` times faster than the wall clock until it reaches the wall
    clock; from then on each event waits for its own time (real time)."""

    def __init__(
        self,
        factor: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.factor = factor
        self.clock = clock
        self.sleep = sleep
        self.origin: tuple[float, float] | None = None  # (event time, wall time)

    def __call__(self, ts: float) -> None:
        now = self.clock()
        if self.origin is None:
            self.origin = (ts, now)
        due = max(self.origin[1] + (ts - self.origin[0]) / self.factor, ts)
        if due > now:
            self.sleep(due - now)


def collector_item(ev: dict[str, Any]) -> dict[str, Any]:
    """A canonical web event as the snippet would send it (the collector owns the envelope)."""
    item = {k: v for k, v in ev.items() if k not in ("v", "platform", "ts", "ingested_at", "id")}
    item["nonce"] = str(ev["id"]).removeprefix("web:")
    return item


BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


class CollectorClient:
    """Posts website events to the collector, as the browser snippet does."""

    def __init__(self, url: str, origin: str) -> None:
        self.url = url.rstrip("/") + "/e"
        self.origin = origin
        self.sent = 0
        self.failed = 0

    def post(self, items: list[dict[str, Any]]) -> bool:
        req = urllib.request.Request(
            self.url,
            data=orjson.dumps(items),
            # A browser's User-Agent: urllib's own is a crawler's, which the collector drops.
            headers={
                "Content-Type": "application/json",
                "Origin": self.origin,
                "User-Agent": BROWSER_UA,
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                ok = 200 <= resp.status < 300
        except (urllib.error.URLError, OSError):
            ok = False
        if ok:
            self.sent += len(items)
        else:
            self.failed += len(items)
        return ok


@dataclass
class FeedProgress:
    produced: int = 0  # straight into <ns>.events
    posted: int = 0  # through the collector
    last_ts: float | None = None  # event time of the newest event sent
    done: bool = False
    error: str | None = None
    caught_up_at: float | None = None  # monotonic time the history was all sent
    started_at: float = field(default_factory=time.monotonic)


class Feeder(threading.Thread):
    """Sends the plan's events in the background: history paced, then live."""

    def __init__(
        self,
        plan: DemoPlan,
        bootstrap: str,
        namespace: str,
        speed: float,
        collector: CollectorClient | None,
        lines: Iterable[bytes] | None = None,
    ) -> None:
        super().__init__(name="demo-feeder", daemon=True)
        self.plan = plan
        self.bootstrap = bootstrap
        self.namespace = namespace
        self.collector = collector
        self.stopping = threading.Event()
        self.pacer = CatchUpPacer(speed, sleep=self.stopping.wait)
        self.progress = FeedProgress()
        self._lines = lines if lines is not None else generate(plan.spec)

    def stop(self) -> None:
        self.stopping.set()

    def events(self) -> Iterator[bytes]:
        """The lines to produce, paced; live website events are posted to the collector."""
        plan, prog = self.plan, self.progress
        for line in self._lines:
            ev = orjson.loads(line)
            ts = parse_ts(ev["ts"])
            if ts < plan.live_from and not plan.replay_history:
                continue
            if ts >= plan.until or self.stopping.is_set():
                break
            if ts >= plan.live_from and prog.caught_up_at is None:
                prog.caught_up_at = time.monotonic()
            self.pacer(ts)
            if self.stopping.is_set():
                break
            prog.last_ts = ts
            if ev["platform"] == "web" and ts >= plan.live_from and self.collector is not None:
                if self.collector.post([collector_item(ev)]):
                    prog.posted += 1
                continue
            prog.produced += 1
            yield line
        if prog.caught_up_at is None:
            prog.caught_up_at = time.monotonic()

    def run(self) -> None:
        from processors.history.replay import produce_lines

        try:
            produce_lines(self.bootstrap, self.namespace, self.events(), live=True)
        except Exception as exc:  # reported by the command, which keeps the stack running
            self.progress.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.progress.done = True


def ensure_stack(stack: LocalStack, timeout: float = 120.0) -> list[str]:
    """``stack.up()``, idempotent; Ripple's processes started with another configuration
    (say a plain ``ripple up``) are restarted first, so the workers track the demo's brands
    and the collector serves its site. Returns the names of the restarted processes."""
    from deploy.stack import process
    from deploy.stack.local import INFRA

    manifest = stack.manifest() or {}
    restarted: list[str] = []
    if manifest.get("config") != stack.cfg.path:
        ripple = [n for n in stack.running() if n not in INFRA]
        restarted = process.stop_many(stack.paths, ripple, 30.0)
    stack.up(timeout=timeout)
    return restarted
