"""What of the rollup's journal still counts (processors.job.journal_slots)."""

from processors.job.journal_slots import JournalSlots
from processors.wire import MarkerRecord, PartialBody, PartialRecord

LATENESS = 600.0


def _partial(p: int, start: int, final: bool, size: int = 60) -> PartialRecord:
    return PartialRecord(p, size, start, PartialBody([], [], {}, {}, {}, None, None), final)


def test_a_newer_revision_or_marker_makes_the_older_entry_obsolete() -> None:
    slots = JournalSlots(LATENESS)
    assert slots.note(b"1", _partial(0, 0, final=False), float("-inf")) == []
    assert slots.note(b"2", _partial(1, 0, final=False), float("-inf")) == []  # other partition
    assert slots.note(b"3", _partial(0, 0, final=True), float("-inf")) == [b"1"]
    assert slots.note(b"4", MarkerRecord(0, 30.0, False, 30.0), float("-inf")) == []
    assert slots.note(b"5", MarkerRecord(0, 50.0, False, 50.0), float("-inf")) == [b"4"]
    assert len(slots) == 3  # partition 0's final, partition 1's revision, partition 0's marker


def test_entries_the_rollup_ignores_are_obsolete_themselves() -> None:
    slots = JournalSlots(LATENESS)
    slots.note(b"1", _partial(0, 0, final=True), float("-inf"))
    # a provisional revision after the final one (the rollup keeps the final)
    assert slots.note(b"2", _partial(0, 0, final=False), float("-inf")) == [b"2"]
    # a partial of a window already final (a re-send after a restart)
    assert slots.note(b"3", _partial(2, 0, final=True), 60.0 + LATENESS) == [b"3"]
    assert slots.current == {(0, 60, 0): (b"1", True)}


def test_finalized_returns_the_entries_of_windows_made_final_and_keeps_the_rest() -> None:
    slots = JournalSlots(LATENESS)
    slots.note(b"1", _partial(0, 0, final=True), float("-inf"))
    slots.note(b"2", _partial(0, 60, final=True), float("-inf"))
    slots.note(b"3", _partial(0, 0, final=True, size=3600), float("-inf"))
    slots.note(b"4", MarkerRecord(0, 700.0, False, 700.0), float("-inf"))
    assert slots.finalized(60.0 + LATENESS) == [b"1"]
    assert slots.finalized(60.0 + LATENESS) == []
    assert sorted(slots.finalized(3600.0 + LATENESS)) == [b"2", b"3"]
    assert slots.current == {(0,): (b"4", True)}  # the latest marker always counts
