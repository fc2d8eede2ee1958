"""uvicorn protocols that hand the TLS client certificate to the app as the ASGI TLS extension.

uvicorn verifies client certificates but does not put them in the scope, and the
app never sees the transport. Its `http`/`ws` settings take a protocol class, so
these subclasses of uvicorn's own protocols (the ones `auto` picks) wrap the app
once per connection, right after the handshake (asyncio and uvloop call
`connection_made` only once it is done), and every request or WebSocket on that
connection then carries `scope["extensions"]["tls"]`
(https://asgi.readthedocs.io/en/latest/specs/tls.html) with the principal.
Named by import string in `uvicorn.Config`, so `--workers` children load them too.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.protocols.websockets.wsproto_impl import WSProtocol

from rolescope.service.peer_identity import PRINCIPAL_KEY, TLS_EXTENSION, principal_from_peercert
from rolescope.serving.tls_context import resumes_session_from_before_ca_change

HTTP_PROTOCOL = "rolescope.serving.tls_protocols:PeerIdentityHttpToolsProtocol"
H11_PROTOCOL = "rolescope.serving.tls_protocols:PeerIdentityH11Protocol"
WS_PROTOCOL = "rolescope.serving.tls_protocols:PeerIdentityWebSocketsProtocol"
WSPROTO_PROTOCOL = "rolescope.serving.tls_protocols:PeerIdentityWSProtocol"
# The TLS record version numbers the ASGI TLS extension asks for.
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def _distinguished_name(peercert: dict[str, Any]) -> str | None:
    short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C"}
    parts = [
        f"{short.get(attribute, attribute)}={value}"
        for rdn in reversed(peercert.get("subject", ()))
        for attribute, value in rdn
    ]
    return ",".join(parts) or None


def tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any] | None:
    """The ASGI TLS extension of a connection, None for plain HTTP."""
    ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    # The dict form is empty unless the certificate was verified (a client CA is configured).
    peercert = ssl_object.getpeercert() or {}
    der = ssl_object.getpeercert(binary_form=True)
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der and peercert else [],
        "client_cert_name": _distinguished_name(peercert) if peercert else None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
        PRINCIPAL_KEY: principal_from_peercert(peercert),
    }


def with_tls_extension(app: Any, transport: asyncio.BaseTransport) -> Any:
    """`app` with this connection's TLS extension in every scope (unchanged over plain HTTP).

    A connection resuming a session from before the client CA changed is closed here instead.
    """
    ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
    if ssl_object is not None and resumes_session_from_before_ca_change(ssl_object):
        transport.close()
        return app
    tls = tls_extension(transport)
    if tls is None:
        return app

    async def connection_app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["extensions"] = {**(scope.get("extensions") or {}), TLS_EXTENSION: tls}
        await app(scope, receive, send)

    return connection_app


class PeerIdentityHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app = with_tls_extension(self.app, transport)


class PeerIdentityH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app = with_tls_extension(self.app, transport)


class PeerIdentityWebSocketsProtocol(WebSocketsSansIOProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.app = with_tls_extension(self.app, transport)


class PeerIdentityWSProtocol(WSProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app = with_tls_extension(self.app, transport)


def protocol_options(http: str = "auto", ws: str = "auto") -> dict[str, str]:
    """`uvicorn.Config` `http`/`ws` arguments naming the subclass of the protocol each name selects."""
    try:
        import httptools  # noqa: F401

        auto_http = HTTP_PROTOCOL
    except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
        auto_http = H11_PROTOCOL
    http_choice = {"auto": auto_http, "httptools": HTTP_PROTOCOL, "h11": H11_PROTOCOL}.get(http, http)
    ws_choice = {"auto": WS_PROTOCOL, "websockets-sansio": WS_PROTOCOL, "wsproto": WSPROTO_PROTOCOL}.get(
        ws, ws
    )
    return {"http": http_choice, "ws": ws_choice}
