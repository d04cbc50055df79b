"""Table writes whose changelog record is in the Kafka producer before the input is acked.

faust sends a table's changelog records through its producer buffer (``send_soon``), and
the buffer's flush before an offset commit returns after a 0.1 s lull even when records
are still buffered. Under load a commit could thus pass changelog records not yet handed
to Kafka; a worker killed right then lost them while its input offsets said they were
processed, and the worker that took the partition over rebuilt its state without them.

Here the local store is written directly and the changelog record goes straight to the
Kafka producer (awaited into its accumulator), which faust's commit does flush
completely before it commits the input offsets. Restore and standbys are faust's own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from faust.types import TP

log = logging.getLogger(__name__)


class DurableTable:
    """Put and delete on a faust table (raw bytes keys and values) from inside an agent."""

    def __init__(self, app: faust.App, table: Any) -> None:
        self.app = app
        self.table = table

    def __iter__(self) -> Any:
        return iter(self.table)

    def get(self, key: bytes) -> bytes | None:
        return self.table.get(key)  # type: ignore[no-any-return]

    def __getitem__(self, key: bytes) -> bytes:
        return self.table[key]  # type: ignore[no-any-return]

    def keys(self) -> Any:
        return self.table.keys()

    async def put(self, partition: int, key: bytes, value: bytes) -> None:
        self.table.data[key] = value  # the local store only: no buffered changelog send
        await self._changelog(partition, key, value)

    async def delete(self, partition: int, key: bytes) -> None:
        del self.table.data[key]
        await self._changelog(partition, key, None)

    async def _changelog(self, partition: int, key: bytes, value: bytes | None) -> None:
        topic = self.table.changelog_topic.get_topic_name()
        fut: Any = await self.app.producer.send(topic, key, value, partition, None, None)
        fut.add_done_callback(self._persisted)

    def _persisted(self, fut: asyncio.Future[Any]) -> None:
        # faust's own bookkeeping: the local store remembers the changelog offset it holds,
        # so a restart on the same disk reads only the changelog's tail.
        if fut.cancelled():
            return
        if (exc := fut.exception()) is not None:
            # The producer gave up on a changelog record: stop rather than commit past it.
            log.error("changelog write failed (%s); stopping the worker", exc)
            asyncio.ensure_future(self.app.crash(exc))
            return
        md = fut.result()
        try:
            self.table.data.set_persisted_offset(TP(md.topic, md.partition), md.offset)
        except Exception:  # the partition moved away meanwhile: its new owner restores it
            log.debug("persisted offset not recorded for %s-%d", md.topic, md.partition)


def rocksdb_options(cache_mb: int, partitions: int) -> dict[str, int]:
    """faust opens one RocksDB per table partition, each with its own block cache and
    memtables (defaults: 2 GiB cache, 3 x 64 MiB memtables): the budget is split between
    the partitions and the memtables kept small, so memory does not grow with the log."""
    return {
        "block_cache_size": max(4, cache_mb // max(1, partitions)) * 1024 * 1024,
        "block_cache_compressed_size": 0,
        "write_buffer_size": 8 * 1024 * 1024,
        "max_write_buffer_number": 2,
    }
