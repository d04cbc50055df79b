"""The partition indices of a worker, on disk: a day of ids and a week of targets in memory
would grow with the day's traffic; in RocksDB they cost a bounded cache.

One RocksDB (rocksdict) per worker under its state dir, keys prefixed by the partition.
It is a cache of what the item log says, never a source of truth: when a partition is
(re)assigned its range is deleted and rebuilt from the item log (``processors.job.resolve``),
so a crash between the two writes cannot leave an id the item log does not hold.

Bloom filters make the common lookup, an id never seen, cheap; expiry is logical (the value
carries the event time and a read past the horizon counts as absent) and physical by a
wall-clock TTL a day longer than the longest horizon.

The filters and indexes are partitioned (two-level), and their blocks live in the block
cache: a day of ids is tens of millions of keys, and one SST's whole-file filter (2.4 MB
at 1.9 million keys) is larger than a shard of the cache (64 MiB in 64 shards), so it was
evicted as soon as it was read and every ``get`` read and parsed it again: 200 us an add
past 1.5 million keys (the soak's resolve fell to 830 events/s). Partitions of 4 KiB fit,
and only their small top level is pinned.
"""

from __future__ import annotations

import struct
from pathlib import Path

from rocksdict import (
    AccessType,
    BlockBasedIndexType,
    BlockBasedOptions,
    Cache,
    Options,
    Rdict,
    WriteOptions,
)

_TS = struct.Struct(">d")
SEEN, TARGET = b"s", b"t"


def open_db(path: Path, cache_mb: int, ttl_seconds: int) -> Rdict:
    path.mkdir(parents=True, exist_ok=True)
    opts = Options(raw_mode=True)
    table = BlockBasedOptions()
    table.set_bloom_filter(10, False)
    table.set_block_cache(Cache(cache_mb * 1024 * 1024))
    table.set_cache_index_and_filter_blocks(True)
    table.set_index_type(BlockBasedIndexType.two_level_index_search())
    table.set_partition_filters(True)
    table.set_metadata_block_size(4096)
    table.set_pin_top_level_index_and_filter(True)
    opts.set_block_based_table_factory(table)
    opts.set_write_buffer_size(16 * 1024 * 1024)
    opts.set_max_write_buffer_number(2)
    opts.create_if_missing(True)
    db = Rdict(str(path), options=opts, access_type=AccessType.with_ttl(ttl_seconds))
    # No write-ahead log: the indices are a cache that a partition's rebuild clears and
    # refills from the item log, so what a crash loses of them was going to be rebuilt.
    writes = WriteOptions()
    writes.disable_wal = True  # type: ignore[method-assign,assignment]  # a property; the stubs say method
    db.set_write_options(writes)
    return db


def _prefix(partition: int) -> bytes:
    return partition.to_bytes(2, "big")


def clear_partition(db: Rdict, partition: int) -> None:
    db.delete_range(_prefix(partition), _prefix(partition + 1))


class DiskSeen:
    """Ids seen (de-duplication) of one partition."""

    def __init__(self, db: Rdict, partition: int, horizon: float) -> None:
        self.db = db
        self.prefix = _prefix(partition) + SEEN
        self.horizon = horizon  # seconds of event time an id is remembered
        self.watermark = float("-inf")

    def add(self, role: int, event_id: str, ts: float) -> bool:
        key = self.prefix + bytes((role,)) + event_id.encode()
        old = self.db.get(key)
        if old is not None and _TS.unpack(old)[0] >= self.watermark - self.horizon:
            return False
        self.db.put(key, _TS.pack(ts))
        return True

    def expire_before(self, ts: float) -> None:
        self.watermark = ts + self.horizon  # reads older than ``ts`` count as absent


class DiskTargets:
    """Brand posts of one partition: event time and brands."""

    def __init__(self, db: Rdict, partition: int) -> None:
        self.db = db
        self.prefix = _prefix(partition) + TARGET
        self.oldest = float("-inf")

    def add(self, post_id: str, ts: float, brands: frozenset[str]) -> None:
        if brands:
            value = _TS.pack(ts) + "\x00".join(sorted(brands)).encode()
            self.db.put(self.prefix + post_id.encode(), value)

    def get(self, post_id: str) -> tuple[float, frozenset[str]] | None:
        value = self.db.get(self.prefix + post_id.encode())
        if value is None:
            return None
        ts = _TS.unpack(value[:8])[0]
        if ts < self.oldest:
            return None
        return ts, frozenset(value[8:].decode().split("\x00"))

    def expire_before(self, ts: float) -> None:
        self.oldest = ts
