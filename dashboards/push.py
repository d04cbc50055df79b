"""Upload the generated dashboards to a running Grafana through its HTTP API (grafana-client).

The token comes from ``$GRAFANA_TOKEN`` (or the file named by ``$GRAFANA_TOKEN_FILE``) and is
never logged; basic auth in the URL (``http://user:pass@host:3000``) works too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import niquests
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from dashboards import generate, provisioning
from dashboards.config import CONFIG, Config
from ingest.config import read_secret

TOKEN_ENV = "GRAFANA_TOKEN"


class PushError(RuntimeError):
    """The dashboards could not be pushed (missing files or credentials, Grafana refused)."""


@dataclass(frozen=True)
class Pushed:
    uid: str
    title: str
    url: str


def load_boards() -> list[dict[str, Any]]:
    """The committed dashboards (what provisioning shows), in a stable order."""
    files = sorted(generate.GRAFANA_DIR.glob("*.json"))
    if not files:
        raise PushError(
            f"no dashboards in {generate.GRAFANA_DIR}: run `ripple dashboards generate`"
        )
    return [json.loads(f.read_text()) for f in files]


def _ensure_folder(api: GrafanaApi, cfg: Config) -> None:
    g = cfg.grafana
    try:
        api.folder.get_folder(g.folder_uid)
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
        api.folder.create_folder(g.folder, uid=g.folder_uid)


def _ensure_datasource(api: GrafanaApi, cfg: Config, prometheus_url: str) -> None:
    body = dict(provisioning.datasources(cfg)["datasources"][0])  # type: ignore[index]
    body["url"] = prometheus_url
    try:
        api.datasource.get_datasource_by_uid(body["uid"])
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
        api.datasource.create_datasource(body)
        return
    api.datasource.update_datasource_by_uid(body["uid"], body)


def push(
    url: str,
    token: str | None = None,
    prometheus_url: str | None = None,
    cfg: Config = CONFIG,
    timeout: float = 10.0,
) -> list[Pushed]:
    """Create the folder (and with ``prometheus_url`` the data source), then upload every
    dashboard with overwrite. Returns what Grafana reported for each."""
    token = token if token is not None else read_secret(TOKEN_ENV)
    if not token and "@" not in url:
        raise PushError(
            f"no Grafana credentials: set ${TOKEN_ENV} (or ${TOKEN_ENV}_FILE), or put user:password in the URL"
        )
    api = GrafanaApi.from_url(url, credential=token or None, timeout=timeout)
    boards = load_boards()
    try:
        _ensure_folder(api, cfg)
        if prometheus_url:
            _ensure_datasource(api, cfg, prometheus_url)
        out = []
        for board in boards:
            reply = api.dashboard.update_dashboard(
                {
                    "dashboard": {**board, "id": None},
                    "folderUid": cfg.grafana.folder_uid,
                    "overwrite": True,
                    "message": "ripple dashboards push",
                }
            )
            out.append(Pushed(board["uid"], board["title"], str(reply.get("url", ""))))
        return out
    except GrafanaException as exc:
        # The message carries Grafana's reply, never the credentials.
        raise PushError(f"Grafana refused ({exc.status_code}): {exc.message}") from None
    except niquests.exceptions.RequestException as exc:
        raise PushError(f"cannot reach Grafana at {_public(url)}: {type(exc).__name__}") from None


def _public(url: str) -> str:
    """The URL without user:password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
