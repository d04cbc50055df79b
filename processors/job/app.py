"""The faust app of one namespace: the gate task, the ``resolve`` and ``rollup`` agents,
and the worker's ``/metrics`` page (prometheus-client) with consumer lag per partition."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from ingest.config import Config
from ingest.kafka_client import Brokers, KafkaAccess, client_options, kafka_access
from ingest.telemetry import gauge
from processors.catalogue import PROC_CONSUMER_LAG
from processors.job import resolve, rollup
from processors.job.context import Context
from processors.job.gate import Gate
from processors.job.gate_process import GateParams, GateProcess
from processors.job.watchdog import PartitionWatchdog

log = logging.getLogger(__name__)


def create_app(
    config: Config,
    *,
    namespace: str | None = None,
    bootstrap: Brokers | None = None,
    datadir: str | Path = ".ripple/faust",
    web_port: int = 16066,
) -> tuple[faust.App, Context, GateProcess | Gate]:
    ns = namespace or config.kafka.namespace
    # A plain --bootstrap string still takes the security settings of [kafka].
    boot = (
        bootstrap if isinstance(bootstrap, KafkaAccess) else kafka_access(config.kafka, bootstrap)
    )
    ctx = Context(config, ns, boot, config.kafka.partitions)
    app = faust.App(
        f"ripple-{ns}",
        **client_options(boot, "faust"),  # broker URLs, credentials, replication
        store="rocksdb://",
        datadir=str(datadir),
        web_enabled=True,
        web_host="127.0.0.1",
        web_port=web_port,
        # Loopback unless told (containers set RIPPLE_BIND_HOST=0.0.0.0 to be scraped).
        web_bind=os.environ.get("RIPPLE_BIND_HOST", "127.0.0.1"),
        topic_partitions=ctx.partitions,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        producer_max_request_size=16 * 1024 * 1024,
        consumer_max_fetch_size=16 * 1024 * 1024,
        stream_wait_empty=True,
        table_cleanup_interval=3600.0,
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        # Many events per record: a few records per second carry tens of thousands of events.
        stream_buffer_maxsize=64,
    )
    params = GateParams(
        boot, ns, ctx.partitions, ctx.lateness, config.kafka.max_event_bytes,
        config.processing.gate_batch_records, float(config.processing.max_future_seconds),
        ctx.excluded,
    )  # fmt: skip
    # Its own process by default: the gate and the agents are both CPU-bound Python.
    gate: GateProcess | Gate = (
        GateProcess(params) if config.processing.gate_process else params.gate()
    )
    resolve.register(app, ctx)
    rollup.register(app, ctx)
    lag = gauge(PROC_CONSUMER_LAG)

    @app.task  # type: ignore[misc]
    async def run_gate() -> None:
        try:
            await gate.run()
        except asyncio.CancelledError:
            gate.stop()
            raise

    @app.timer(interval=5.0)  # type: ignore[misc]
    async def export_lag() -> None:
        consumer = app.consumer
        for tp in consumer.assignment():
            hw = consumer.highwater(tp)
            committed = consumer._committed_offset.get(tp)  # type: ignore[attr-defined]  # no public getter
            if hw is not None:
                lag.labels(ns, tp.topic, str(tp.partition)).set(max(0, hw - (committed or 0)))

    watchdog = PartitionWatchdog(
        app, ns, {ctx.topics.internal("batches"), ctx.topics.internal("partials")}, ctx.applied
    )

    @app.timer(interval=10.0)  # type: ignore[misc]
    async def watch_partitions() -> None:
        await watchdog.check()

    @app.page("/metrics")  # type: ignore[misc]
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")  # type: ignore[misc]
    async def healthz(web: Any, request: Any) -> Any:
        if isinstance(gate, GateProcess) and not gate.alive:
            return web.json({"status": "gate restarting", "namespace": ns}, status=503)
        return web.json({"status": "ok", "namespace": ns})

    return app, ctx, gate
