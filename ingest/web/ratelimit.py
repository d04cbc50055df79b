"""Per-client token buckets, keyed by a keyed hash of the client address held in memory only.

The address itself is never stored or logged: the key is BLAKE2b of it under a random
per-process secret, so the table cannot be reversed by hashing the IPv4 space, and it dies
with the process. Idle buckets (refilled to full) are swept when the table grows large.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable


class TokenBuckets:
    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self._max_clients = max_clients
        self._clock = clock
        self._secret = os.urandom(32)
        # key -> [tokens, last refill time]
        self._buckets: dict[bytes, list[float]] = {}

    def key(self, client: str) -> bytes:
        return hashlib.blake2b(client.encode(), key=self._secret, digest_size=12).digest()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: bytes, n: float = 1.0) -> float:
        """Take ``n`` tokens: 0.0 when granted, else the seconds until they would be there."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_clients:
                self._sweep(now)
            bucket = self._buckets[key] = [self.burst, now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= n:
            bucket[0] = tokens - n
            return 0.0
        bucket[0] = tokens
        return (n - tokens) / self.rate

    def _sweep(self, now: float) -> None:
        full_after = self.burst / self.rate
        idle = [k for k, (_, t) in self._buckets.items() if now - t >= full_after]
        for k in idle:
            del self._buckets[k]
        if len(self._buckets) >= self._max_clients:
            # Still full of active clients: forget the oldest half (they start with a full bucket).
            for k in list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[k]
