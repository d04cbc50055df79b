"""The worker's on-disk partition indices (processors.job.disk_indices)."""

from pathlib import Path


def test_disk_indices_behave_like_the_memory_ones_and_clear_by_partition(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from processors.job.disk_indices import DiskSeen, DiskTargets, clear_partition, open_db

    db = open_db(tmp_path / "idx", 8, 86400 * 9)
    seen, other = DiskSeen(db, 0, 86400), DiskSeen(db, 1, 86400)
    assert seen.add(0, "a", 7200.5) and not seen.add(0, "a", 9000.0) and seen.add(1, "a", 7200.5)
    assert other.add(0, "a", 7200.5)  # partitions do not share ids
    seen.expire_before(7201.0)  # ids older than 7201 s count as absent
    assert seen.add(0, "a", 9000.0)
    targets = DiskTargets(db, 0)
    targets.add("p1", 1_763_625_600.123456, frozenset({"acme", "globex"}))
    targets.add("p2", 1.0, frozenset())
    assert targets.get("p1") == (1_763_625_600.123456, frozenset({"acme", "globex"}))
    assert targets.get("p2") is None
    clear_partition(db, 0)
    assert targets.get("p1") is None and seen.add(0, "a", 9000.0)
    assert not other.add(0, "a", 7200.5)  # partition 1 kept


def test_disk_indices_partition_their_filters_so_a_cache_shard_holds_them(tmp_path: Path) -> None:
    """A whole-file Bloom filter of a large SST outgrows a cache shard and is re-read on
    every get (200 us an add past 1.5 million ids); the options RocksDB records must say the
    filters and indexes are partitioned and cached."""
    from processors.job.disk_indices import DiskSeen, open_db

    db = open_db(tmp_path / "idx", 8, 86400 * 9)
    DiskSeen(db, 0, 86400).add(0, "a", 1.0)
    db.flush()
    recorded = max((tmp_path / "idx").glob("OPTIONS-*")).read_text()
    for setting in (
        "partition_filters=true",
        "index_type=kTwoLevelIndexSearch",
        "cache_index_and_filter_blocks=true",
        "pin_top_level_index_and_filter=true",
    ):
        assert setting in recorded, setting
