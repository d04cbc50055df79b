"""Every URL that `ripple up` and `ripple demo` print opens in a real browser (headless
Chromium) and shows something useful: no error page, no "does not include a web
application" (Debian's Alertmanager has no UI, so nothing may point a browser at it).

The URLs are collected from the very functions that print them, run against the session's
real stack with a worker and the website collector started from the stack's own specs.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ingest.web.cdp import CDPSession, chromium_binary, chromium_page

pytestmark = [pytest.mark.integration, pytest.mark.browser]

if chromium_binary() is None:
    pytest.skip(
        "Debian's chromium is not installed (make install installs it)", allow_module_level=True
    )

# What a page must not say (its visible text, once rendered).
BAD_PAGE = re.compile(
    r"does not include a web application"
    r"|404 page not found|Not Found|Internal Server Error|Method Not Allowed"
    r"|Error executing query|parse error|bad_data|Unexpected Application Error",
    re.IGNORECASE,
)
# Not pages: "POST <url>" (an endpoint) and "--flag=<url>" (a command's argument: amtool's,
# tested below by running the command).
URL = re.compile(r"(?<!POST )(?<!=)(https?://[^\s)]+)")


@pytest.fixture(scope="module")
def local(stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """The session stack with one worker and the collector running, as `ripple up` starts them."""
    from deploy.stack import process, supervisor
    from deploy.stack.local import LocalStack
    from ingest.config import load_config

    config = stack.state_dir / "urls.toml"
    config.write_text(
        stack.config_path.read_text() + '\n[[sites]]\nname = "acme.com"\ndomains = ["acme.com"]\n'
    )
    local = LocalStack(load_config(config), stack.state_dir)
    specs = local.ripple_specs()
    assert {s.name for s in specs} == {"worker-1", "collector"}
    try:
        for spec in specs:
            supervisor.start(local.paths, spec)
        for spec in specs:
            supervisor.wait_healthy(local.paths, spec, 120)
        yield local
    finally:
        process.stop_many(local.paths, [s.name for s in specs], 30)


def printed(local, capsys: pytest.CaptureFixture[str]) -> str:  # type: ignore[no-untyped-def]
    from deploy.commands.demo import _print_where
    from deploy.commands.stack import print_where

    capsys.readouterr()
    print_where(local)
    _print_where(local)
    return capsys.readouterr().out


async def page_text(page: CDPSession, url: str) -> tuple[int | None, str]:
    """The main document's HTTP status and its visible text once the page has settled."""
    await page.send("Page.enable")
    nav = await page.send("Page.navigate", url=url)
    assert "errorText" not in nav, f"{url}: {nav.get('errorText')}"
    await page.wait_event("Page.loadEventFired", timeout=30)
    text = ""
    # Single-page apps (Prometheus' UI) render after load: wait until the text settles.
    for _ in range(40):
        await asyncio.sleep(0.25)
        now = await page.evaluate("document.body ? document.body.innerText : ''")
        if now and now == text:
            break
        text = now
    status = await page.evaluate(
        "(performance.getEntriesByType('navigation')[0] || {}).responseStatus || null"
    )
    return status, text


async def open_all(urls: list[str], profile: Path) -> dict[str, tuple[int | None, str]]:
    results = {}
    async with chromium_page(profile) as page:
        for url in urls:
            results[url] = await page_text(page, url)
    return results


def bad(status: int | None, text: str) -> str | None:
    if status is None or status >= 400:
        return f"HTTP {status}"
    if not text.strip():
        return "an empty page"
    hit = BAD_PAGE.search(text)
    return f"says {hit.group(0)!r}" if hit else None


def test_every_printed_url_shows_a_useful_page(
    local, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    text = printed(local, capsys)
    urls = list(dict.fromkeys(URL.findall(text)))
    assert any(u.startswith(local.prometheus_url) and u.endswith("/alerts") for u in urls)
    assert any("/metrics" in u for u in urls) and any(u.endswith("/ripple.js") for u in urls)
    assert local.alertmanager_url not in urls  # only its JSON API
    assert f"{local.webhook_url}/" in urls  # the notifications Alertmanager sent
    # The check can fail: Debian's Alertmanager root page is exactly what must not be printed.
    control = f"{local.alertmanager_url}/"
    results = asyncio.run(open_all([control, *urls], tmp_path / "profile"))
    assert bad(*results.pop(control)) == "says 'does not include a web application'"
    failures = {u: why for u, r in results.items() if (why := bad(*r))}
    assert not failures, failures
    # Where the demo sends people for alerts lists the generated alerting rules.
    alerts = next(text for u, (_, text) in results.items() if u.endswith("/alerts"))
    assert "WorkerDown" in alerts and "EngagementDrop" in alerts, alerts[:500]


def test_the_printed_amtool_command_works(local, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    text = printed(local, capsys)
    (line,) = {m.group(0) for m in re.finditer(r"amtool alert query \S+", text)}
    res = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert "Alertname" in res.stdout  # the table header: it reached the API
