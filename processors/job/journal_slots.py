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
        self.current: dict[Slot, tuple[bytes, bool]] = {}  # slot -> (journal key, final)
        self.ends: dict[Slot, float] = {}  # partial slot -> when its window is final

    def __len__(self) -> int:
        return len(self.current)

    def note(self, key: bytes, msg: RollupInput, finalized_through: float) -> list[bytes]:
        """Note the entry journaled under ``key``; returns the keys it makes obsolete (the
        entry it supersedes, or itself when the rollup ignores it)."""
        if isinstance(msg, MarkerRecord):
            slot: Slot = (msg.p,)
            final = True
        else:
            slot = (msg.p, msg.size, msg.start)
            final = msg.final
            end = msg.start + msg.size + self.lateness
            if end <= finalized_through:
                return [key]  # its window is final already: the rollup ignores it
            held = self.current.get(slot)
            if held is not None and held[1] and not final:
                return [key]  # a provisional revision after the final one: ignored
            self.ends[slot] = end
        old = self.current.get(slot)
        self.current[slot] = (key, final)
        return [old[0]] if old is not None else []

    def finalized(self, finalized_through: float) -> list[bytes]:
        """Forget the entries of windows now final; returns their keys."""
        done = [slot for slot, end in self.ends.items() if end <= finalized_through]
        keys = []
        for slot in done:
            del self.ends[slot]
            keys.append(self.current.pop(slot)[0])
        return keys
