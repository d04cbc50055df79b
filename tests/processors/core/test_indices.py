"""The partition's compact indices (processors.core.indices): dedupe and targets."""

from __future__ import annotations

from processors.core.indices import SeenIds, TargetIndex


def test_seen_ids_tell_new_from_seen_and_expire_by_the_hour() -> None:
    seen = SeenIds()
    assert seen.add(0, "a", 7200.5)
    assert not seen.add(0, "a", 9000.0)  # a duplicate, whatever its time
    assert seen.add(1, "a", 7200.5)  # the same id in another role is its own entry
    seen.expire_before(10_800.0)  # the hour [7200, 10800) ended
    assert len(seen) == 0 and seen.add(0, "a", 7200.5)
    seen.expire_before(10_799.0)  # not yet
    assert len(seen) == 1


def test_target_index_keeps_brand_posts_with_their_exact_time() -> None:
    idx = TargetIndex()
    idx.add("p1", 1_763_625_600.123456, frozenset({"acme"}))
    idx.add("p2", 1_763_625_601.0, frozenset())  # no brand: nothing to remember
    assert idx.get("p1") == (1_763_625_600.123456, frozenset({"acme"}))
    assert idx.get("p2") is None and len(idx) == 1
    idx.expire_before(1_763_625_600.0 + 3600)
    assert idx.get("p1") is None


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
