"""The caller's identity from its TLS client certificate, used as the owner of its sessions.

With a client CA configured the TLS handshake has already proved the certificate
chains to it; what is left is a name. Service meshes (Istio, Linkerd, SPIRE)
put the workload identity in a SPIFFE URI SAN (`spiffe://trust-domain/ns/x/sa/y`)
and leave the subject empty or generic, so that URI wins; otherwise the
subject's common name is the principal.

The server puts the handshake's result in the ASGI TLS extension
(`scope["extensions"]["tls"]`, https://asgi.readthedocs.io/en/latest/specs/tls.html)
plus one key of its own, `PRINCIPAL_KEY`, so this layer needs no certificate parser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from rolescope.service.auth import OWNER_STATE_KEY

TLS_EXTENSION = "tls"
PRINCIPAL_KEY = "client_cert_principal"
SPIFFE_SCHEME = "spiffe://"
# Session owners from certificates never collide with API-key owners (`k_…`).
OWNER_PREFIX = "cert:"


def principal_from_peercert(peercert: Mapping[str, Any] | None) -> str | None:
    """A SPIFFE URI SAN, else the subject CN, of `ssl.SSLSocket.getpeercert()`'s dict; None when neither."""
    if not peercert:
        return None
    alt_names: Sequence[tuple[str, str]] = peercert.get("subjectAltName", ())
    for kind, value in alt_names:
        if kind == "URI" and value.startswith(SPIFFE_SCHEME):
            return value
    for rdn in peercert.get("subject", ()):
        for attribute, value in rdn:
            if attribute == "commonName" and value:
                return str(value)
    return None


def principal_from_scope(scope: Scope) -> str | None:
    """The principal the server attached to this connection (None over HTTP or without a certificate)."""
    tls = scope.get("extensions", {}).get(TLS_EXTENSION)
    principal = tls.get(PRINCIPAL_KEY) if isinstance(tls, dict) else None
    return principal if isinstance(principal, str) else None


def owner_for_principal(principal: str) -> str:
    return OWNER_PREFIX + principal


class CertificateOwnerMiddleware:
    """Makes the client certificate's principal the request's owner (after any API-key check)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            principal = principal_from_scope(scope)
            if principal is not None:
                scope.setdefault("state", {})[OWNER_STATE_KEY] = owner_for_principal(principal)
        await self.app(scope, receive, send)
