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
