"""The client certificate's principal reaches the app over HTTPS and WSS, with either HTTP parser."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send
from websockets.sync.client import connect

from rolescope.client_tls import ClientTls
from rolescope.service.peer_identity import principal_from_scope
from rolescope.serving.tls import TlsFiles, uvicorn_tls_options
from rolescope.serving.tls_protocols import protocol_options


async def tell_principal(scope: Scope, receive: Receive, send: Send) -> None:
    tls = scope.get("extensions", {}).get("tls") or {}
    said = json.dumps({"principal": principal_from_scope(scope), "name": tls.get("client_cert_name")})
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": said})
        await send({"type": "websocket.close", "code": 1000})
    elif scope["type"] == "http":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": said.encode()})


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_principal_reaches_http_and_websocket_scopes(
    pki: Any, asgi_server: Callable[..., Any], http: str
) -> None:
    ca = pki.ca("ca")
    server = pki.issue("server", ca=ca, server=True)
    mesh = pki.issue("workload", ca=ca, spiffe="spiffe://cluster.local/ns/chat/sa/frontend")
    alice = pki.issue("alice", ca=ca)
    options = {
        **uvicorn_tls_options(TlsFiles(server.cert, server.key, ca.cert)),
        **protocol_options(http=http),
    }
    srv = asgi_server(tell_principal, **options)
    url = srv.url.replace("http://", "https://")
    as_alice = ClientTls(ca.cert, alice.cert, alice.key).ssl_context()
    as_workload = ClientTls(ca.cert, mesh.cert, mesh.key).ssl_context()
    # Two requests on one keep-alive connection both carry it.
    with httpx.Client(verify=as_alice) as client:
        for _ in range(2):
            assert client.get(url).json() == {"principal": "alice", "name": "CN=alice"}
    assert (
        httpx.get(url, verify=as_workload).json()["principal"] == "spiffe://cluster.local/ns/chat/sa/frontend"
    )
    with connect(url.replace("https://", "wss://"), ssl=as_workload) as socket:
        assert (
            json.loads(socket.recv(timeout=10))["principal"] == "spiffe://cluster.local/ns/chat/sa/frontend"
        )
