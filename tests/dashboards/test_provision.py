"""Provisioning against a local HTTP server that records the exact Grafana API calls.

No Grafana can be installed here, so the server stands in for one: it answers
like Grafana's HTTP API and the tests check method, path, auth and body.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rolescope.dashboards.build import build_all
from rolescope.dashboards.provision import credential_from, folder_uid, provision
from rolescope.errors import ConfigError, EnvironmentProblem


@dataclass
class Call:
    method: str
    path: str
    authorization: str
    body: Any


@dataclass
class FakeGrafana:
    url: str
    calls: list[Call] = field(default_factory=list)
    folders: set[str] = field(default_factory=set)
    token: str = "glsa_test"
    basic: tuple[str, str] = ("admin", "secret")


def _handler(state: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: object) -> None:  # silence the test output
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> Call:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            call = Call(
                self.command,
                self.path,
                self.headers.get("Authorization", ""),
                json.loads(raw) if raw else None,
            )
            state.calls.append(call)
            return call

        def _authorised(self, call: Call) -> bool:
            basic = "Basic " + base64.b64encode(":".join(state.basic).encode()).decode()
            return call.authorization in (f"Bearer {state.token}", basic)

        def do_GET(self) -> None:
            call = self._record()
            if not self._authorised(call):
                return self._answer(401, {"message": "Unauthorized"})
            uid = call.path.removeprefix("/api/folders/")
            if call.path.startswith("/api/folders/") and uid in state.folders:
                return self._answer(200, {"uid": uid, "title": uid, "id": 7})
            self._answer(404, {"message": "folder not found"})

        def do_POST(self) -> None:
            call = self._record()
            if not self._authorised(call):
                return self._answer(401, {"message": "Unauthorized"})
            if call.path == "/api/folders":
                state.folders.add(call.body["uid"])
                return self._answer(200, {"uid": call.body["uid"], "title": call.body["title"], "id": 7})
            if call.path == "/api/dashboards/db":
                uid = call.body["dashboard"]["uid"]
                return self._answer(
                    200, {"status": "success", "uid": uid, "url": f"/d/{uid}/x", "version": 3}
                )
            self._answer(404, {"message": "not found"})

    return Handler


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = FakeGrafana(url=f"http://127.0.0.1:{server.server_port}")
    server.RequestHandlerClass = _handler(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_first_provision_creates_the_folder_then_upserts_every_dashboard_by_uid(grafana: FakeGrafana) -> None:
    dashboards = build_all()
    done = provision(dashboards, grafana.url, grafana.token, folder="Role Services")
    assert [(c.method, c.path) for c in grafana.calls] == [
        ("GET", "/api/folders/role-services"),
        ("POST", "/api/folders"),
        *[("POST", "/api/dashboards/db")] * 5,
    ]
    assert grafana.calls[1].body == {"title": "Role Services", "uid": "role-services"}
    assert all(c.authorization == f"Bearer {grafana.token}" for c in grafana.calls)
    for call, (uid, dashboard) in zip(grafana.calls[2:], dashboards.items(), strict=True):
        assert call.body["folderUid"] == "role-services"
        assert call.body["overwrite"] is True
        assert call.body["dashboard"]["uid"] == uid
        assert call.body["dashboard"]["id"] is None
        assert call.body["dashboard"]["panels"] == dashboard["panels"]
    assert [d.uid for d in done] == list(dashboards) and done[0].version == 3


def test_existing_folder_is_reused_and_basic_auth_is_sent(grafana: FakeGrafana) -> None:
    grafana.folders.add("rolescope")
    provision(build_all(), grafana.url, grafana.basic)
    assert [(c.method, c.path) for c in grafana.calls][:2] == [
        ("GET", "/api/folders/rolescope"),
        ("POST", "/api/dashboards/db"),
    ]
    assert grafana.calls[0].authorization.startswith("Basic ")


def test_rejected_credentials_are_a_config_error(grafana: FakeGrafana) -> None:
    with pytest.raises(ConfigError, match="rejected the credentials"):
        provision(build_all(), grafana.url, "wrong-token")


def test_unreachable_grafana_is_an_environment_problem() -> None:
    with socket.socket() as sock:  # a port nobody listens on once this socket closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(EnvironmentProblem, match=f"cannot reach Grafana at http://127.0.0.1:{port}"):
        provision(build_all(), f"http://127.0.0.1:{port}", "token", timeout_s=5)


def test_credentials_are_either_a_token_or_user_and_password() -> None:
    assert credential_from("t", None, None) == "t"
    assert credential_from(None, "u", "p") == ("u", "p")
    with pytest.raises(ConfigError, match="either --token or --user/--password"):
        credential_from("t", "u", "p")
    with pytest.raises(ConfigError, match="needs credentials"):
        credential_from(None, "u", None)
    assert folder_uid("SRE / Role services") == "sre-role-services"


def test_cli_provision_uses_the_committed_dashboards(grafana: FakeGrafana) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rolescope",
            "dashboards",
            "provision",
            "--url",
            grafana.url,
            "--user",
            "admin",
            "--password",
            "secret",
            "--folder",
            "SRE",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if k not in ("GRAFANA_TOKEN", "GRAFANA_PASSWORD")},
    )
    assert result.returncode == 0, result.stderr
    assert [c.path for c in grafana.calls].count("/api/dashboards/db") == 5
    assert "rolescope-streaming" in result.stdout


def test_cli_provision_says_what_to_install_without_grafana_client(grafana: FakeGrafana) -> None:
    # `None` in sys.modules makes `import grafana_client` fail as it does when the extra is absent.
    blocked = (
        "import sys; sys.modules['grafana_client'] = None; sys.argv[0] = 'rolescope'; "
        "from rolescope.cli import main; sys.exit(main())"
    )
    result = subprocess.run(
        [sys.executable, "-c", blocked, "dashboards", "provision", "--url", grafana.url, "--token", "t"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    output = " ".join((result.stdout + result.stderr).split())
    assert "pip install 'rolescope[grafana]'" in output, output
    assert "Traceback" not in output
    assert grafana.calls == []
