"""Per-client token buckets, keyed by a keyed hash of the client address held in memory only.

The address itself is never stored or logged: the key is BLAKE2b of it under a random
per-process secret, so the table cannot be reversed by hashing the IPv4 space, and it dies
with the process. Idle buckets (refilled to full) are swept when the table grows large.

IPv6 clients are keyed by their /64: one subscriber usually holds a whole /64 and picks new
addresses in it at will (privacy extensions), so a per-address bucket would be no limit.
IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
"""

from __future__ import annotations

import hashlib
import ipaddress
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
        return hashlib.blake2b(
            client_prefix(client).encode(), key=self._secret, digest_size=12
        ).digest()

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


def client_prefix(client: str) -> str:
    """What one bucket stands for: the IPv4 address, or the /64 of an IPv6 address."""
    try:
        addr = ipaddress.ip_address(client.split("%", 1)[0])  # no zone id
    except ValueError:
        return client  # "unknown", a unix socket...
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)
