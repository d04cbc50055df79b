"""Website collector: serves /ripple.js and turns what it posts into canonical web events.

Starlette on uvicorn: an ASGI app on one asyncio loop, so request handling and the
aiokafka producer share that loop, and a request is answered only after Kafka (or the
spool) took its records, with no thread hand-off. Starlette adds routing and responses on
top of plain ASGI and little else (its TestClient drives it in-process in tests); uvicorn
with httptools and uvloop is among the fastest Python HTTP servers and lets us switch the
access log off (client IPs are never logged). aiohttp would do too, but brings its own
server and client stack where only a thin layer over ASGI is needed.

Endpoints: ``GET /ripple.js``, ``POST /e`` (+ ``OPTIONS`` preflight), ``GET /healthz``,
``GET /metrics`` (on ``collector.metrics_port`` instead when that is set: the public port
then has no ``/metrics``). Order of checks on ``POST /e`` and what each refusal means:

====================  ======  ===================================================  ====
check                 status  reason                                               DLQ
====================  ======  ===================================================  ====
origin of no site     403     ``forbidden_origin``                                 no
client over its rate  429     ``rate_limited`` (``Retry-After``)                   no
crawler User-Agent    204     bot traffic, counted, nothing kept                   no
body > max_body_bytes 413     ``too_large``                                        yes
not JSON / UTF-8      400     ``invalid_json``                                     yes
fields, types, kinds  400     ``missing_field``/``wrong_type``/``unknown_kind``/…  yes
batch > max_batch     413     ``too_large``                                        yes
unknown site          403     ``unknown_site``                                     no
origin not the site's 403     ``forbidden_origin``                                 no
automated browser     204     bot traffic (``"automated": true``), counted         no
spool or disk full    503     ``unavailable`` (``Retry-After``)                    no
====================  ======  ===================================================  ====

Dead letters are the malformed records that reached the collector from an origin of a
configured site (EVENTS.md: invalid input is never dropped silently): the original bytes
(for an oversize body, its first ``max_body_bytes``), reason and source ``web``. Traffic
that is not any site's data (foreign origins, unknown sites) and flow control (429, 503,
which the client may retry) are refused without a dead letter, so hostile floods from
elsewhere cannot fill the DLQ. Success is ``200 {"accepted": n}`` once Kafka acknowledged,
``202 {"accepted": n, "spooled": true}`` when the spool holds the records.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from ingest.config import CollectorSettings, Config, load_config
from ingest.kafka_client import Brokers, kafka_access, verify_access
from ingest.metricdefs import COLLECTOR_BOT_REQUESTS, COLLECTOR_REQUESTS
from ingest.telemetry import counter
from ingest.web.bots import is_crawler
from ingest.web.ratelimit import TokenBuckets
from ingest.web.sink import DeadLetter, Delivery, Item
from ingest.web.sites import SiteRegistry, origin_host, request_origin
from ingest.web.spool import SpoolFull
from ingest.web.wire import Rejection, parse_request

log = logging.getLogger(__name__)

SOURCE = "web"
_json = msgspec.json.Encoder()


class SinkLike(Protocol):
    """What the app needs from ingest.web.sink.Sink (tests may pass an in-memory one)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def submit(self, items: Sequence[Item]) -> Delivery: ...
    def status(self) -> dict[str, object]: ...


def snippet_source() -> bytes:
    return resources.files("ingest.web").joinpath("static/ripple.js").read_bytes()


def _response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(_json.encode(body), status, headers, media_type="application/json")


class Collector:
    """The request handlers, bound to one configuration and one sink."""

    def __init__(
        self,
        sites: SiteRegistry,
        settings: CollectorSettings,
        sink: SinkLike,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sites = sites
        self.settings = settings
        self.sink = sink
        self.clock = clock
        self.buckets = TokenBuckets(settings.rate_per_second, settings.rate_burst)
        self.snippet = snippet_source()
        self.snippet_etag = '"' + hashlib.blake2b(self.snippet, digest_size=8).hexdigest() + '"'
        self._requests = counter(COLLECTOR_REQUESTS)
        self._bots = counter(COLLECTOR_BOT_REQUESTS)

    # -- helpers ---------------------------------------------------------------------------

    def _count(self, site: str, status: int) -> None:
        self._requests.labels(
            site if self.sites.known(site) else "unknown", f"{status // 100}xx"
        ).inc()

    def _bot(self, site: str, cors: dict[str, str]) -> Response:
        """Bot traffic: 204, counted under the site, nothing sent anywhere."""
        self._bots.labels(site if self.sites.known(site) else "unknown").inc()
        self._count(site, 204)
        return Response(status_code=204, headers=cors)

    @staticmethod
    def _cors(origin: str | None) -> dict[str, str]:
        return (
            {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
            if origin
            else {"Vary": "Origin"}
        )

    def _client_key(self, request: Request) -> bytes:
        client = request.client
        return self.buckets.key(client.host if client else "unknown")

    async def _read_body(self, request: Request, limit: int) -> tuple[bytes, bool]:
        """At most ``limit`` bytes of the body, and whether there was more."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            # Refuse without reading the rest; keep a prefix for the dead letter.
            chunks: list[bytes] = []
            size = 0
            async for chunk in request.stream():
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    break
            return b"".join(chunks)[:limit], True
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return bytes(body[:limit]), True
        return bytes(body), False

    # -- endpoints -------------------------------------------------------------------------

    async def snippet_js(self, request: Request) -> Response:
        headers = {"ETag": self.snippet_etag, "Cache-Control": "public, max-age=3600"}
        if request.headers.get("if-none-match") == self.snippet_etag:
            return Response(status_code=304, headers=headers)
        return Response(self.snippet, headers=headers, media_type="application/javascript")

    async def preflight(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        if not self.sites.serves_host(origin_host(origin)):
            return _response(
                403, {"error": "forbidden_origin", "detail": "origin is not a configured site's"}
            )
        return Response(
            status_code=204,
            headers={
                **self._cors(origin),
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": "86400",
            },
        )

    async def collect(self, request: Request) -> Response:
        origin = request_origin(request.headers.get("origin"), request.headers.get("referer"))
        host = origin_host(origin)
        if not self.sites.serves_host(host):
            self._count("", 403)
            return _response(
                403,
                {
                    "error": "forbidden_origin",
                    "detail": "the request's Origin is not a domain of any configured site",
                },
            )
        cors = self._cors(origin)
        key = self._client_key(request)
        wait = self.buckets.take(key)
        if wait:
            return self._rate_limited(wait, cors)
        if is_crawler(request.headers.get("user-agent")):
            # Judged before the body is read: a crawler's posts are never parsed or kept.
            return self._bot(self.sites.site_for_host(host) or "unknown", cors)

        limit = self.settings.max_body_bytes
        try:
            body, oversize = await self._read_body(request, limit)
        except ClientDisconnect:  # gone before sending its body: nothing was accepted
            return Response(status_code=400)
        try:
            if oversize:
                raise Rejection(413, "too_large", f"body exceeds {limit} bytes")
            events, automated = parse_request(body, self.clock(), max_batch=self.settings.max_batch)
        except Rejection as rej:
            return await self._refuse(rej, body, cors)

        site = events[0].site
        if any(ev.site != site for ev in events):
            return await self._refuse(
                Rejection(400, "wrong_type", "all events of one request must be for one site"),
                body,
                cors,
            )
        if not self.sites.known(site):
            self._count(site, 403)
            return _response(
                403,
                {"error": "unknown_site", "detail": f"no site named {site[:80]!r} is configured"},
                cors,
            )
        if not self.sites.allows(site, host):
            self._count(site, 403)
            return _response(
                403,
                {
                    "error": "forbidden_origin",
                    "detail": f"origin {host!r} is not one of the domains of {site!r}",
                },
                cors,
            )
        if automated:
            return self._bot(site, cors)
        if len(events) > 1:
            wait = self.buckets.take(key, len(events) - 1)
            if wait:
                return self._rate_limited(wait, cors)
        try:
            delivery = await self.sink.submit(events)
        except (SpoolFull, OSError) as exc:
            # OSError: a disk error other than "full" (EIO...); still the client's "retry later".
            self._count(site, 503)
            return _response(
                503, {"error": "unavailable", "detail": str(exc)}, {**cors, "Retry-After": "30"}
            )
        self._count(site, 200)
        if delivery is Delivery.ACKED:
            return _response(200, {"accepted": len(events)}, cors)
        return _response(202, {"accepted": len(events), "spooled": True}, cors)

    def _rate_limited(self, wait: float, cors: dict[str, str]) -> Response:
        self._count("", 429)
        retry = max(1, int(wait + 0.999))
        return _response(
            429,
            {
                "error": "rate_limited",
                "detail": f"too many requests from this client; retry in {retry}s",
            },
            {**cors, "Retry-After": str(retry)},
        )

    async def _refuse(self, rej: Rejection, body: bytes, cors: dict[str, str]) -> Response:
        self._count("", rej.status)
        if rej.dead_letter:
            try:
                await self.sink.submit([DeadLetter(body, rej.reason, rej.detail)])
            except (SpoolFull, OSError) as exc:
                log.warning("dead letter (%s) not kept: %s", rej.reason, exc)
        return _response(rej.status, {"error": rej.reason, "detail": rej.detail}, cors)

    async def healthz(self, request: Request) -> Response:
        status = self.sink.status()
        return _response(503 if status.get("status") == "unavailable" else 200, status)

    async def metrics(self, request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def create_app(
    config: Config, sink: SinkLike, *, clock: Callable[[], float] = time.time
) -> Starlette:
    collector = Collector(SiteRegistry(config.sites), config.collector, sink, clock=clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await sink.start()
        try:
            yield
        finally:
            await sink.stop()

    routes = [
        Route("/ripple.js", collector.snippet_js, methods=["GET", "HEAD"]),
        Route("/e", collector.collect, methods=["POST"]),
        Route("/e", collector.preflight, methods=["OPTIONS"]),
        Route("/healthz", collector.healthz, methods=["GET"]),
    ]
    if not config.collector.metrics_port:
        routes.append(Route("/metrics", collector.metrics, methods=["GET"]))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.collector = collector
    return app


# -- command line --------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default [collector] host)")
    parser.add_argument("--port", type=int, help="port to listen on (default [collector] port)")
    parser.add_argument(
        "--spool", help="spool file (default [collector] spool_path, else <state_dir>/spool/)"
    )
    parser.add_argument(
        "--linger-ms",
        type=int,
        default=2,
        help="producer linger: wait this long to batch records (latency vs. throughput; default 2)",
    )
    parser.add_argument(
        "--forwarded-allow-ips",
        help="trust X-Forwarded-For from these proxy addresses (comma-separated), for rate limiting",
    )


def spool_path(config: Config, namespace: str, override: str | None = None) -> Path:
    if override:
        return Path(override)
    if config.collector.spool_path:
        return Path(config.collector.spool_path)
    return Path(config.stack.state_dir) / "spool" / f"web-{namespace}.spool"


def build(
    config: Config, bootstrap: Brokers, namespace: str, spool_file: Path, *, linger_ms: int = 2
) -> Starlette:
    from ingest.producer import EventProducer
    from ingest.web.sink import Sink
    from ingest.web.spool import Spool

    producer = EventProducer(bootstrap, namespace, source=SOURCE, linger_ms=linger_ms)
    spool = Spool(
        spool_file,
        max_bytes=config.collector.spool_max_bytes,
        max_age_seconds=config.collector.spool_max_seconds,
        compact_bytes=config.collector.spool_compact_bytes,
    )
    return create_app(config, Sink(producer, spool))


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ingest.config import ConfigError

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load_config(args.config)
        bootstrap = kafka_access(config.kafka, args.bootstrap)
        verify_access(bootstrap)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    if not config.sites:
        log.error("no [[sites]] in the configuration: the collector has nothing to serve")
        return 2
    namespace = args.namespace or config.kafka.namespace
    app = build(
        config,
        bootstrap,
        namespace,
        spool_path(config, namespace, getattr(args, "spool", None)),
        linger_ms=getattr(args, "linger_ms", 2),
    )
    if config.collector.metrics_port:
        from prometheus_client import start_http_server

        # A daemon thread of its own: it serves the default registry and dies with us.
        start_http_server(config.collector.metrics_port, addr=args.host or config.collector.host)
        log.info("metrics on port %d only", config.collector.metrics_port)
    forwarded = getattr(args, "forwarded_allow_ips", None)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=args.host or config.collector.host,
            port=args.port if args.port is not None else config.collector.port,
            access_log=False,  # would log client addresses
            proxy_headers=forwarded is not None,
            forwarded_allow_ips=forwarded,
            server_header=False,
            log_level="info",
            lifespan="on",
        )
    )
    log.info(
        "collector for sites %s, producing to %s.events",
        ", ".join(s.name for s in config.sites),
        namespace,
    )
    server.run()
    return 0 if server.started else 1
