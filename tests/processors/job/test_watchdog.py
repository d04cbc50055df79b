"""The partition watchdog (processors.job.watchdog): a stage partition behind its end offset
with no progress is reported and re-sought; progress, rebalances and caught-up
partitions are left alone."""

from __future__ import annotations

from dataclasses import dataclass, field

from processors.job.watchdog import PartitionWatchdog


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass
class FakeConsumer:
    ends: dict[TP, int]
    seeks: list[tuple[TP, int]] = field(default_factory=list)
    resumed: list[TP] = field(default_factory=list)
    _committed_offset: dict[TP, int] = field(default_factory=dict)

    def assignment(self) -> set[TP]:
        return set(self.ends)

    def highwater(self, tp: TP) -> int:
        return self.ends[tp]

    def resume_partitions(self, tps: list[TP]) -> None:
        self.resumed += tps

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


@dataclass
class FakeApp:
    consumer: FakeConsumer
    rebalancing: bool = False
    in_recovery: bool = False


async def test_a_partition_without_progress_is_resought_to_its_next_offset() -> None:
    now = [0.0]
    stuck, moving, other = TP("ns.proc.batches", 1), TP("ns.proc.batches", 2), TP("ns.events", 0)
    consumer = FakeConsumer({stuck: 50, moving: 50, other: 99})
    applied = {("ns.proc.batches", 1): 7, ("ns.proc.batches", 2): 10}
    app = FakeApp(consumer)
    dog = PartitionWatchdog(app, "ns", {"ns.proc.batches"}, applied, 60, clock=lambda: now[0])
    for t in (0, 30, 59):
        now[0] = t
        applied[("ns.proc.batches", 2)] += 1  # this one progresses
        await dog.check()
    assert consumer.seeks == []
    app.rebalancing = True  # a rebalance restarts the clock
    now[0] = 70
    await dog.check()
    app.rebalancing = False
    for t in (71, 100, 131.5):
        now[0] = t
        applied[("ns.proc.batches", 2)] += 1
        await dog.check()
    assert consumer.seeks == [(stuck, 7)] and consumer.resumed == [stuck]
    assert dog.recoveries == 1
    applied[("ns.proc.batches", 1)] = applied[("ns.proc.batches", 2)] = 50  # both caught up
    now[0] = 400
    await dog.check()
    assert dog.recoveries == 1
