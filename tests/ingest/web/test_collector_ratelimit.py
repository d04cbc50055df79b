"""Per-client token buckets (ingest/web/ratelimit.py)."""

from __future__ import annotations

import pytest

from ingest.web.ratelimit import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_rate() -> None:
    clock = Clock()
    tb = TokenBuckets(rate=2, burst=3, clock=clock)
    k = tb.key("192.0.2.1")
    assert [tb.take(k) for _ in range(3)] == [0, 0, 0]
    assert tb.take(k) == pytest.approx(0.5)  # one token comes back every 0.5 s
    clock.now += 0.5
    assert tb.take(k) == 0
    assert tb.take(k) > 0
    clock.now += 100
    assert [tb.take(k) for _ in range(3)] == [0, 0, 0]  # refills up to the burst only
    assert tb.take(k) > 0


def test_clients_are_independent_and_keys_are_not_the_address() -> None:
    tb = TokenBuckets(rate=1, burst=1, clock=Clock())
    a, b = tb.key("192.0.2.1"), tb.key("192.0.2.2")
    assert a != b and b"192.0.2.1" not in a and len(a) == 12
    assert tb.take(a) == 0 and tb.take(a) > 0
    assert tb.take(b) == 0
    # Keyed per process: another process (another secret) hashes the same address differently.
    assert TokenBuckets(rate=1, burst=1).key("192.0.2.1") != a


def test_taking_several_tokens() -> None:
    tb = TokenBuckets(rate=10, burst=20, clock=Clock())
    k = tb.key("c")
    assert tb.take(k, 15) == 0
    assert tb.take(k, 10) == pytest.approx(0.5)
    assert tb.take(k, 5) == 0


def test_table_stays_bounded() -> None:
    clock = Clock()
    tb = TokenBuckets(rate=1, burst=1, max_clients=100, clock=clock)
    for i in range(1000):
        tb.take(tb.key(str(i)))
        clock.now += 0.01
    assert len(tb) <= 100
