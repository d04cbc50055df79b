"""Poison records on internal topics: to the dead-letter topic with a reason, never a crash.

The gate is the only writer of ``<ns>.proc.*``, but a broker can be shared with other tools
(or an older Ripple), and one undecodable record must not crash-loop an agent: it is sent
to ``<ns>.dlq`` with the reason and where it was read, counted, and skipped.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ingest.producer import dead_letter_headers
from ingest.telemetry import counter
from processors.catalogue import PROC_DEAD_LETTERS

if TYPE_CHECKING:
    from processors.job.context import Context

log = logging.getLogger(__name__)
MAX_COPY = 64 * 1024  # a truncated copy is enough to see what it was


class Poison:
    def __init__(self, app: Any, ctx: Context) -> None:
        self.app = app
        self.ctx = ctx
        self._dead = counter(PROC_DEAD_LETTERS)

    async def send(self, raw: bytes | None, reason: str, detail: str) -> None:
        log.warning("dead-lettering an internal record (%s): %s", reason, detail[:300])
        headers = dead_letter_headers("processors", reason, detail[:1000])
        await self.app.producer.send(
            self.ctx.topics.dlq, None, (raw or b"")[:MAX_COPY], None, None, headers
        )
        self._dead.labels(self.ctx.namespace, reason).inc()
