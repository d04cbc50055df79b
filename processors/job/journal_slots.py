"""Which entries of the rollup's journal still count, known without reading the journal.

The rollup keeps, per window and partition, only the latest partial it received (each is
a cumulative snapshot: a provisional revision is replaced by the next one and by the
final), and per partition only the latest marker. So of the journal's entries one per
slot counts; the others are superseded and can go at once, and the entries of windows
made final can go once the stream alerts' state that they fed is saved.

Compaction used to find those by decoding the whole journal each time rows were final:
the decoded copy was the largest thing in the worker at the end of a soak (266 MiB of
730, ``memray``), and its size followed the traffic. Here each entry is noted when it is
journaled, by its slot and window end, so a compaction is a walk over this small map.
"""

from __future__ import annotations

from processors.wire import MarkerRecord, RollupInput

# (partition, size, start) of a partial; (partition,) of a marker.
Slot = tuple[int, ...]


class JournalSlots:
    def __init__(self, lateness: float) -> None:
        self.lateness = lateness
        self.keys: dict[Slot, bytes] = {}  # slot -> the journal key of its latest entry
        self.ends: dict[Slot, float] = {}  # partial slot -> when its window is final

    def clear(self) -> None:
        self.keys.clear()
        self.ends.clear()

    def note(self, key: bytes, msg: RollupInput, applied: bool) -> list[bytes]:
        """Note the entry journaled under ``key``, once the rollup has applied it (``applied``
        False: it ignored it, the rules being ``processors.core.rollup.Rollup``'s); returns
        the keys it makes obsolete: the entry it supersedes, or itself when ignored."""
        if not applied:
            return [key]
        if isinstance(msg, MarkerRecord):
            slot: Slot = (msg.p,)
        else:
            slot = (msg.p, msg.size, msg.start)
            self.ends[slot] = msg.start + msg.size + self.lateness
        old = self.keys.get(slot)
        self.keys[slot] = key
        return [old] if old is not None else []

    def finalized(self, finalized_through: float) -> list[bytes]:
        """Forget the entries of windows now final; returns their keys."""
        done = [slot for slot, end in self.ends.items() if end <= finalized_through]
        for slot in done:
            del self.ends[slot]
        return [self.keys.pop(slot) for slot in done]
