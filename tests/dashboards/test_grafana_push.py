"""``ripple dashboards push``: what reaches Grafana's HTTP API, over real HTTP on loopback.

No Grafana server package is available here, so a small HTTP server answers the four API
calls the push makes (folder, data source, dashboards) the way Grafana documents them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dashboards import generate
from dashboards.config import CONFIG
from dashboards.push import PushError, push
from deploy.cli import main

TOKEN = "glsa_test_token_123"


class FakeGrafana(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, str, object]] = []
    folders: set[str] = set()
    datasources: set[str] = set()
    token = TOKEN

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.requests.append((method, self.path, self.headers.get("Authorization", ""), body))
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            return self._reply(401, {"message": "Unauthorized"})
        cls = type(self)
        if method == "GET" and self.path.startswith("/api/folders/"):
            uid = self.path.rsplit("/", 1)[1]
            if uid in cls.folders:
                return self._reply(200, {"uid": uid, "title": "Ripple"})
            return self._reply(404, {"message": "folder not found"})
        if method == "POST" and self.path == "/api/folders":
            cls.folders.add(body["uid"])  # type: ignore[index]
            return self._reply(200, {"uid": body["uid"], "title": body["title"]})  # type: ignore[index]
        if method == "GET" and self.path.startswith("/api/datasources/uid/"):
            uid = self.path.rsplit("/", 1)[1]
            if uid in cls.datasources:
                return self._reply(200, {"uid": uid})
            return self._reply(404, {"message": "Data source not found"})
        if method == "POST" and self.path == "/api/datasources":
            cls.datasources.add(body["uid"])  # type: ignore[index]
            return self._reply(200, {"message": "Datasource added"})
        if method == "PUT" and self.path.startswith("/api/datasources/uid/"):
            return self._reply(200, {"message": "Datasource updated"})
        if method == "POST" and self.path == "/api/dashboards/db":
            d = body["dashboard"]  # type: ignore[index]
            return self._reply(
                200, {"status": "success", "uid": d["uid"], "url": f"/d/{d['uid']}/x"}
            )
        return self._reply(404, {"message": "not found"})

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def grafana() -> Iterator[tuple[str, type[FakeGrafana]]]:
    handler = type(
        "Grafana", (FakeGrafana,), {"requests": [], "folders": set(), "datasources": set()}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", handler
    finally:
        server.shutdown()


def test_push_creates_the_folder_and_uploads_every_dashboard(grafana) -> None:
    url, g = grafana
    pushed = push(url, token=TOKEN)
    assert sorted(p.uid for p in pushed) == sorted(uid for _, uid in CONFIG.grafana.uids)
    uploads = [body for method, path, _, body in g.requests if path == "/api/dashboards/db"]
    assert len(uploads) == 3
    for body in uploads:
        assert body["overwrite"] is True and body["folderUid"] == CONFIG.grafana.folder_uid
        committed = json.loads(
            (
                generate.GRAFANA_DIR / f"{body['dashboard']['uid'].removeprefix('ripple-')}.json"
            ).read_text()
        )
        assert body["dashboard"] == {**committed, "id": None}
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth, _ in g.requests)
    assert ("POST", "/api/folders") in {(m, p) for m, p, _, _ in g.requests}
    # A second push finds the folder and overwrites.
    push(url, token=TOKEN)
    assert [p for m, p, _, _ in g.requests if m == "POST" and p == "/api/folders"] == [
        "/api/folders"
    ]


def test_push_with_prometheus_url_provisions_the_datasource(grafana) -> None:
    url, g = grafana
    push(url, token=TOKEN, prometheus_url="http://127.0.0.1:29090")
    (ds,) = [b for m, p, _, b in g.requests if m == "POST" and p == "/api/datasources"]
    assert ds["uid"] == CONFIG.grafana.datasource_uid and ds["url"] == "http://127.0.0.1:29090"
    push(url, token=TOKEN, prometheus_url="http://127.0.0.1:29091")
    assert any(m == "PUT" for m, _, _, _ in g.requests)


def test_wrong_token_is_a_clear_error_without_the_token(grafana) -> None:
    url, _ = grafana
    with pytest.raises(PushError) as err:
        push(url, token="wrong-token-456")
    assert "401" in str(err.value) and "wrong-token-456" not in str(err.value)


def test_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    monkeypatch.delenv("GRAFANA_TOKEN_FILE", raising=False)
    with pytest.raises(PushError, match="GRAFANA_TOKEN"):
        push("http://127.0.0.1:1")


def test_unreachable_grafana(capsys: pytest.CaptureFixture[str]) -> None:
    from deploy.stack.ports import free_port

    with pytest.raises(PushError, match="cannot reach Grafana"):
        push(f"http://admin:secret@127.0.0.1:{free_port()}", timeout=2)


def test_cli_push_reads_the_token_from_a_secret_file(
    grafana, tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url, g = grafana
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    monkeypatch.setenv("GRAFANA_TOKEN_FILE", str(secret))
    assert main(["dashboards", "push", "--url", url]) == 0
    out = capsys.readouterr()
    assert out.out.count("pushed ripple-") == 3
    assert TOKEN not in out.out + out.err
    monkeypatch.setenv("GRAFANA_TOKEN", "nope")
    assert main(["dashboards", "push", "--url", url]) == 2
    assert "401" in capsys.readouterr().err
