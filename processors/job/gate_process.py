"""The gate in a process of its own, beside the worker's faust event loop.

The gate's work (decode, validate, watermark, route, pack; Kafka in and out) and the
stateful agents' work are both pure Python: in one process they share one core, however
many the machine has. Here the worker starts the gate as a child process (``spawn``) and
keeps only its metrics: after each batch the child sends a ``GateReport`` over a pipe,
and the worker applies it to the metrics its ``/metrics`` serves (``GateMetrics``).

Nothing else crosses the pipe: the gate's state is its committed offsets and their
metadata, as in one process, so a child that dies is restarted and recovers from them
(the batch it was writing is re-run and de-duplicated downstream). The child dies with
the worker (``PR_SET_PDEATHSIG``): a worker killed with SIGKILL leaves no gate behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from ingest.kafka_client import KafkaAccess
from processors.job.gate import Gate, GateMetrics
from processors.wire import GateReport, decode_gate_report, pack

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
RESTART_DELAY = 2.0


@dataclass(frozen=True)
class GateParams:
    """What the child needs to build its ``Gate`` (picklable: it crosses ``spawn``)."""

    bootstrap: KafkaAccess
    namespace: str
    partitions: int
    lateness: float
    max_event_bytes: int
    batch_records: int
    max_future: float
    excluded: frozenset[tuple[str, str]]

    def gate(self, report: Callable[[GateReport], None] | None = None) -> Gate:
        """The gate these parameters make (in this process, or in the child)."""
        return Gate(
            self.bootstrap, self.namespace, self.partitions, self.lateness,
            self.max_event_bytes, batch_records=self.batch_records,
            max_future=self.max_future, excluded=self.excluded, report=report,
        )  # fmt: skip


def _die_with_parent(parent: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the worker died before the line above
        os._exit(1)


def _child(params: GateParams, conn: Connection, parent: int, loglevel: int) -> None:
    _die_with_parent(parent)
    logging.basicConfig(level=loglevel, format="[%(asctime)s] [gate] %(levelname)s %(message)s")

    def report(r: GateReport) -> None:
        conn.send_bytes(pack(r))

    gate = params.gate(report)
    loop = asyncio.new_event_loop()
    loop.add_signal_handler(signal.SIGTERM, gate.stop)
    try:
        loop.run_until_complete(gate.run())
    finally:
        loop.close()


class GateProcess:
    """Runs, watches and restarts the child; applies its reports to this process's metrics."""

    def __init__(self, params: GateParams) -> None:
        self.params = params
        self.metrics = GateMetrics(params.namespace)
        self._proc: Any = None
        self._conn: Connection | None = None
        self._stopping = False

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe(duplex=False)
        # Never below INFO: faust leaves the root logger at NOTSET, and a DEBUG gate logs
        # every fetch request (that alone halved its rate).
        level = max(logging.getLogger().getEffectiveLevel(), logging.INFO)
        self._proc = ctx.Process(
            target=_child, args=(self.params, theirs, os.getpid(), level),
            name=f"ripple-gate-{self.params.namespace}", daemon=True,
        )  # fmt: skip
        self._proc.start()
        theirs.close()
        self._conn = ours
        log.info("gate %s: started in process %d", self.params.namespace, self._proc.pid)

    async def run(self) -> None:
        """Start the child and keep it running until cancelled."""
        loop = asyncio.get_running_loop()
        try:
            while not self._stopping:
                self._start()
                assert self._conn is not None
                ended = asyncio.Event()
                conn = self._conn
                loop.add_reader(conn.fileno(), self._receive, conn, ended)
                await ended.wait()
                loop.remove_reader(conn.fileno())
                conn.close()
                await loop.run_in_executor(None, self._proc.join, 10)
                if self._stopping:
                    break
                log.error(
                    "gate %s: process %d exited with %s; restarting in %.0fs",
                    self.params.namespace, self._proc.pid, self._proc.exitcode, RESTART_DELAY,
                )  # fmt: skip
                await asyncio.sleep(RESTART_DELAY)
        finally:
            self.stop()

    def _receive(self, conn: Connection, ended: asyncio.Event) -> None:
        try:
            while conn.poll():
                self.metrics.apply(decode_gate_report(conn.recv_bytes()))
        except (EOFError, OSError):  # the child is gone
            ended.set()

    def stop(self) -> None:
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.is_alive():
            proc.terminate()
            proc.join(10)
            if proc.is_alive():
                proc.kill()
