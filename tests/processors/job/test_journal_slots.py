"""What of the rollup's journal still counts (processors.job.journal_slots)."""

from processors.core.resolve import Partial
from processors.core.rollup import Rollup
from processors.job.journal_slots import JournalSlots
from processors.wire import MarkerRecord, PartialBody, PartialRecord

LATENESS = 600.0


def _partial(p: int, start: int, final: bool, size: int = 60) -> PartialRecord:
    return PartialRecord(p, size, start, PartialBody([], [], {}, {}, {}, None, None), final)


def test_a_newer_revision_or_marker_makes_the_older_entry_obsolete() -> None:
    slots = JournalSlots(LATENESS)
    assert slots.note(b"1", _partial(0, 0, final=False), True) == []
    assert slots.note(b"2", _partial(1, 0, final=False), True) == []  # other partition
    assert slots.note(b"3", _partial(0, 0, final=True), True) == [b"1"]
    assert slots.note(b"4", MarkerRecord(0, 30.0, False, 30.0), True) == []
    assert slots.note(b"5", MarkerRecord(0, 50.0, False, 50.0), True) == [b"4"]
    assert len(slots.keys) == 3  # partition 0's final, partition 1's revision, partition 0's marker


def test_entries_the_rollup_ignores_are_obsolete_themselves() -> None:
    rollup, slots = Rollup(3, (), LATENESS), JournalSlots(LATENESS)
    assert rollup.add_partial(0, 60, 0, Partial(), final=True)
    slots.note(b"1", _partial(0, 0, final=True), True)
    # a provisional revision after the final one (the rollup keeps the final)
    assert not rollup.add_partial(0, 60, 0, Partial(), final=False)
    assert slots.note(b"2", _partial(0, 0, final=False), False) == [b"2"]
    # a partial of a window already final (a re-send after a restart)
    rollup.finalized_through = 60.0 + LATENESS
    assert not rollup.add_partial(2, 60, 0, Partial(), final=True)
    assert slots.note(b"3", _partial(2, 0, final=True), False) == [b"3"]
    assert slots.keys == {(0, 60, 0): b"1"}


def test_finalized_returns_the_entries_of_windows_made_final_and_keeps_the_rest() -> None:
    slots = JournalSlots(LATENESS)
    slots.note(b"1", _partial(0, 0, final=True), True)
    slots.note(b"2", _partial(0, 60, final=True), True)
    slots.note(b"3", _partial(0, 0, final=True, size=3600), True)
    slots.note(b"4", MarkerRecord(0, 700.0, False, 700.0), True)
    assert slots.finalized(60.0 + LATENESS) == [b"1"]
    assert slots.finalized(60.0 + LATENESS) == []
    assert sorted(slots.finalized(3600.0 + LATENESS)) == [b"2", b"3"]
    assert slots.keys == {(0,): b"4"}  # the latest marker always counts
