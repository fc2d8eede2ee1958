"""HTTP plumbing of the capturing proxy: which headers cross, how a body is read, the proxy's own errors.

Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection, not the
message, so a proxy must not forward them; every other header crosses
untouched and in order. `Host` is the upstream's (as nginx's
`proxy_pass` does by default) and the client's goes on as `X-Forwarded-Host`.
"""

from __future__ import annotations

import json
from http import HTTPStatus

RawHeaders = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Not hop-by-hop, but the proxy's own HTTP stack sets them for the new connection. Content-Length
# stays: a body relayed as a stream then keeps its length instead of turning into chunks.
_REQUEST_SET_BY_CLIENT = frozenset({b"host", b"expect"})


def _connection_tokens(headers: RawHeaders) -> frozenset[bytes]:
    """Headers a `Connection` header names are hop-by-hop for this message too."""
    named = [
        token.strip().lower()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.split(b",")
    ]
    return frozenset(named)


def request_headers(headers: RawHeaders, client_host: str | None) -> RawHeaders:
    dropped = HOP_BY_HOP | _REQUEST_SET_BY_CLIENT | _connection_tokens(headers)
    kept = [(name, value) for name, value in headers if name.lower() not in dropped]
    forwarded_for = b""
    host = b""
    for name, value in headers:
        lower = name.lower()
        if lower == b"x-forwarded-for":
            forwarded_for = value
        elif lower == b"host":
            host = value
    if client_host:
        kept = [(n, v) for n, v in kept if n.lower() != b"x-forwarded-for"]
        address = client_host.encode("latin-1")
        kept.append((b"x-forwarded-for", forwarded_for + b", " + address if forwarded_for else address))
    if host and not any(n.lower() == b"x-forwarded-host" for n, _ in kept):
        kept.append((b"x-forwarded-host", host))
    return kept


def response_headers(headers: RawHeaders) -> RawHeaders:
    dropped = HOP_BY_HOP | _connection_tokens(headers)
    return [(name.lower(), value) for name, value in headers if name.lower() not in dropped]


def header_value(headers: RawHeaders, wanted: bytes) -> str | None:
    for name, value in headers:
        if name.lower() == wanted:
            return value.decode("latin-1")
    return None


def status_line(status: int, reason: bytes) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, reason or b"-")


def head_bytes(first_line: bytes, headers: RawHeaders) -> bytes:
    return first_line + b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n"


def error_response(status: int, code: str, message: str) -> bytes:
    """The proxy's own replies: 502/504 for the upstream, 400/403 for requests it cannot relay."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    reason = HTTPStatus(status).phrase.encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return head_bytes(status_line(status, reason), headers) + body
