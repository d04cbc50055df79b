"""A local HTTP server for the polling sources' tests (aiohttp on 127.0.0.1, free port).

Routes are the test's own handlers; the server records every request (time, method, path
and query, headers) and can be told to misbehave on chosen requests: drop the connection
halfway through the body, answer a status (a 429 with ``Retry-After``), or answer other
bytes (a malformed payload).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Match = Callable[[web.Request], bool]


@dataclass
class Fault:
    kind: str  # "drop" | "status" | "body"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class Seen:
    at: float  # time.monotonic()
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    fault: str | None = None
    status: int | None = None  # what the server answered (None: the connection was dropped)


class ReplayServer:
    def __init__(self) -> None:
        self.app = web.Application(middlewares=[self._middleware])
        self.requests: list[Seen] = []
        self._faults: list[tuple[Match, Fault]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.app.router.add_route(method, path, handler)

    def fault(self, fault: Fault, when: Match = lambda r: True) -> None:
        """Misbehave once, on the next request that ``when`` accepts."""
        self._faults.append((when, fault))

    def seen(self, path_prefix: str = "") -> list[Seen]:
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = None
        for i, (when, f) in enumerate(self._faults):
            if when(request):
                fault = f
                del self._faults[i]
                break
        seen = Seen(
            time.monotonic(), request.method, request.path, dict(request.query),
            dict(request.headers), fault.kind if fault else None,
        )  # fmt: skip
        self.requests.append(seen)
        if fault is None:
            answer = await handler(request)
            seen.status = answer.status
            return answer
        if fault.kind in ("status", "body"):
            seen.status = fault.status
            headers = {"Content-Type": "application/json", **fault.headers}
            return web.Response(status=fault.status, headers=headers, body=fault.body)
        # "drop": promise the whole body, send half of it, and hang up.
        real = await handler(request)
        body = real.body if isinstance(real, web.Response) and isinstance(real.body, bytes) else b""
        resp = web.StreamResponse(status=200, headers={"Content-Length": str(max(len(body), 2))})
        await resp.prepare(request)
        await resp.write(body[: len(body) // 2])
        assert request.transport is not None
        request.transport.close()
        return resp
