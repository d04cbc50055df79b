"""A small Chrome DevTools Protocol client over websockets, and a headless Chromium to drive.

Debian's ``chromium`` only (no browser download): started with a fresh profile and
``--remote-debugging-port=0``; the port it picked is read from ``DevToolsActivePort``.

Headless Chromium says ``HeadlessChrome`` in its User-Agent, which the collector drops as a
crawler's; the pages of the browser tests therefore send a desktop Chromium's User-Agent
(``--user-agent``) unless a test asks for the real headless one. A Chromium driven over the
DevTools port has ``navigator.webdriver`` true (checked: Debian's 156), which the snippet
reports as automated; the normal pages turn that off with
``--disable-blink-features=AutomationControlled`` (the tests check it is false).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
    "--no-default-browser-check",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


# What Debian's chromium sends when it is not headless (its version in the tests' era).
DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class CDPSession:
    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self._ws:
            msg = json.loads(raw)
            if "id" in msg and msg["id"] in self._pending:
                self._pending.pop(msg["id"]).set_result(msg)
            else:
                await self.events.put(msg)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        await self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        reply = await asyncio.wait_for(fut, 30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    async def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            msg = await asyncio.wait_for(self.events.get(), max(0.01, deadline - time.monotonic()))
            if msg.get("method") == method:
                return dict(msg.get("params", {}))

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def close(self) -> None:
        self._reader.cancel()
        await self._ws.close()


@asynccontextmanager
async def chromium_page(
    profile: Path, *, user_agent: str | None = DESKTOP_UA, automated: bool = False
) -> AsyncIterator[CDPSession]:
    """A headless Chromium with one page, driven over CDP; the browser is stopped after.

    ``user_agent=None`` keeps Chromium's own (``HeadlessChrome``); ``automated=True`` leaves
    ``navigator.webdriver`` true, as automation makes it."""
    binary = chromium_binary()
    if binary is None:
        raise RuntimeError("chromium is not installed (make setup installs Debian's chromium)")
    profile.mkdir(parents=True, exist_ok=True)
    log = open(profile.parent / "chromium.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            binary,
            *CHROMIUM_FLAGS,
            *(() if automated else ("--disable-blink-features=AutomationControlled",)),
            *([f"--user-agent={user_agent}"] if user_agent else []),
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    session: CDPSession | None = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "chromium did not start: " + (profile.parent / "chromium.log").read_text()
                )
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with httpx.AsyncClient() as client:
            targets = (await client.get(f"http://127.0.0.1:{port}/json/list")).json()
        page = next(t for t in targets if t["type"] == "page")
        ws = await connect(page["webSocketDebuggerUrl"], max_size=None)
        session = CDPSession(ws)
        yield session
    finally:
        if session is not None:
            await session.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
