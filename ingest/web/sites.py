"""Which sites the collector serves and from which origins (the CORS allow-list per site).

A request's origin is its ``Origin`` header (browsers send it on every cross-origin POST,
``sendBeacon`` included), or the origin of its ``Referer`` when a client left ``Origin`` out.
Hosts are compared exactly, lower-case, without the port: a site lists every host it serves
(``acme.com`` and ``www.acme.com``), as in the ``[[sites]]`` table of METRICS.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from ingest.config import Site


def origin_host(origin: str | None) -> str | None:
    """``https://www.acme.com:8443`` → ``www.acme.com``; None for ``null``, junk or non-http."""
    if not origin or origin == "null":
        return None
    try:
        parts = urlsplit(origin)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    return host.lower().rstrip(".")


class SiteRegistry:
    """Site name → allowed hosts, from the configuration's ``[[sites]]``."""

    def __init__(self, sites: Iterable[Site]) -> None:
        self._hosts: dict[str, frozenset[str]] = {
            s.name: frozenset(d.lower().rstrip(".") for d in s.domains) for s in sites
        }
        self._any_host = frozenset().union(*self._hosts.values()) if self._hosts else frozenset()

    def __bool__(self) -> bool:
        return bool(self._hosts)

    @property
    def names(self) -> list[str]:
        return list(self._hosts)

    def known(self, site: str) -> bool:
        return site in self._hosts

    def serves_host(self, host: str | None) -> bool:
        """Some site lists ``host``: enough to answer a preflight, which names no site."""
        return host is not None and host in self._any_host

    def site_for_host(self, host: str | None) -> str | None:
        """The first configured site that lists ``host`` (a label for traffic with no body)."""
        return next((name for name, hosts in self._hosts.items() if host in hosts), None)

    def allows(self, site: str, host: str | None) -> bool:
        hosts = self._hosts.get(site)
        return hosts is not None and host is not None and host in hosts


def request_origin(origin: str | None, referer: str | None) -> str | None:
    """The origin to check: the ``Origin`` header, else the origin part of ``Referer``."""
    if origin:
        return origin
    if not referer:
        return None
    try:
        parts = urlsplit(referer)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"
