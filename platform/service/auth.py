"""Optional API-key authentication as a pure ASGI middleware.

Keys come from `ROLESCOPE_API_KEYS` (comma-separated) and/or a file named by
`ROLESCOPE_API_KEYS_FILE` (one key a line, `#` comments). With no keys
configured the service is open and every caller's owner is None.

A presented key is compared with every configured key in constant time: both
sides are hashed to a fixed length first and the loop never exits early, so
neither the position of a match nor the length of a key leaks through timing.
The identity stored with a session (the "owner") is a keyed digest of the API
key, never the key itself, so a copy of the database reveals no credential.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from rolescope.errors import ConfigError
from rolescope.service.errors import error_body

# The caller's owner identity goes to `request.state.owner` (the per-request `scope["state"]`).
OWNER_STATE_KEY = "owner"
# Probes and scraping stay open: they carry no session data and orchestrators cannot send keys.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Keys shorter than this are guessable; refuse them at start-up rather than at run time.
MIN_KEY_LENGTH = 16
_OWNER_CONTEXT = b"rolescope-owner-v1:"
# Browsers cannot set headers on a WebSocket upgrade: there the key may also come as `?api_key=`
# or as a subprotocol `rolescope.key.<key>` offered beside `rolescope.v1`.
WS_KEY_QUERY = "api_key"
WS_KEY_SUBPROTOCOL_PREFIX = "rolescope.key."


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def owner_id_for(key: str) -> str:
    """The stable identity of an API key as stored with sessions (not reversible to the key)."""
    return "k_" + hashlib.sha256(_OWNER_CONTEXT + key.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class ApiKeys:
    """The configured keys, kept only as digests, and the owner identity of each."""

    digests: tuple[bytes, ...]
    owners: tuple[str, ...]

    @property
    def enabled(self) -> bool:
        return bool(self.digests)

    @classmethod
    def from_keys(cls, keys: Iterable[str]) -> ApiKeys:
        unique = sorted({k.strip() for k in keys if k.strip()})
        return cls(
            digests=tuple(_digest(k) for k in unique),
            owners=tuple(owner_id_for(k) for k in unique),
        )

    @classmethod
    def load(cls, keys: str | None, keys_file: Path | str | None) -> ApiKeys:
        """Keys from the comma-separated setting and the keys file together; empty when neither is set."""
        collected = [k for k in (keys or "").split(",")]
        if keys_file:
            collected += _read_keys_file(Path(keys_file))
        for key in collected:
            stripped = key.strip()
            if stripped and len(stripped) < MIN_KEY_LENGTH:
                raise ConfigError(
                    f"an API key in ROLESCOPE_API_KEYS/ROLESCOPE_API_KEYS_FILE has {len(stripped)} "
                    f"characters; expected at least {MIN_KEY_LENGTH} (e.g. `openssl rand -hex 24`)"
                )
        return cls.from_keys(collected)

    def identify(self, presented: str) -> str | None:
        """The owner identity of a presented key, or None when it matches no configured key."""
        candidate = _digest(presented)
        found = -1
        # No early exit: every configured key is compared whatever the outcome.
        for index, digest in enumerate(self.digests):
            if hmac.compare_digest(candidate, digest):
                found = index
        return self.owners[found] if found >= 0 else None


def _read_keys_file(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the API keys file {path} (ROLESCOPE_API_KEYS_FILE): {exc.strerror}"
        ) from exc
    keys = [line.strip() for line in text.splitlines()]
    return [k for k in keys if k and not k.startswith("#")]


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The key from `Authorization: Bearer <key>` or `X-API-Key: <key>`."""
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif lowered == b"x-api-key" and value.strip():
            return value.decode("latin-1").strip()
    return None


def presented_websocket_key(scope: Scope) -> str | None:
    """The key of a WebSocket upgrade: a header as on HTTP, else `?api_key=`, else the subprotocol."""
    headers = scope.get("headers", [])
    key = presented_key(headers)
    if key is not None:
        return key
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    for value in query.get(WS_KEY_QUERY, []):
        if value.strip():
            return str(value).strip()
    for name, value in headers:
        if name.lower() == b"sec-websocket-protocol":
            for token in value.decode("latin-1").split(","):
                _, prefixed, key = token.strip().partition(WS_KEY_SUBPROTOCOL_PREFIX)
                if prefixed and not _ and key:
                    return str(key)
    return None


def owner_from_scope(scope: Scope) -> str | None:
    """The owner identity the middleware attached to this request (None when auth is off)."""
    owner = scope.get("state", {}).get(OWNER_STATE_KEY)
    return owner if isinstance(owner, str) else None


class ApiKeyMiddleware:
    """Rejects requests without a valid key (401) and records the caller's owner identity."""

    def __init__(self, app: ASGIApp, keys: ApiKeys, open_paths: frozenset[str] = OPEN_PATHS) -> None:
        self.app = app
        self.keys = keys
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.keys.enabled:
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path in self.open_paths:
            await self.app(scope, receive, send)
            return
        websocket = scope["type"] == "websocket"
        key = presented_websocket_key(scope) if websocket else presented_key(scope.get("headers", []))
        owner = self.keys.identify(key) if key is not None else None
        if owner is None:
            if websocket:
                await _refuse_upgrade(scope, receive, send, missing=key is None)
            else:
                await _unauthorized(send, missing=key is None)
            return
        # uvicorn gives every request its own shallow copy of the lifespan state, so this stays per request.
        scope.setdefault("state", {})[OWNER_STATE_KEY] = owner
        await self.app(scope, receive, send)


def _refusal(missing: bool, websocket: bool = False) -> tuple[bytes, list[Any]]:
    ways = "`Authorization: Bearer <key>` or `X-API-Key: <key>`"
    if websocket:
        ways += f", `?{WS_KEY_QUERY}=<key>` or the subprotocol `{WS_KEY_SUBPROTOCOL_PREFIX}<key>`"
    message = f"this service needs an API key: send {ways}" if missing else "the API key is not valid"
    body = json.dumps(error_body("unauthorized", message)).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", b'Bearer realm="rolescope"'),
    ]
    return body, headers


async def _unauthorized(send: Send, missing: bool) -> None:
    body, headers = _refusal(missing)
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refuse_upgrade(scope: Scope, receive: Receive, send: Send, missing: bool) -> None:
    """401 before the handshake completes (the denial-response extension), else a bare 403 close."""
    await receive()  # websocket.connect
    if "websocket.http.response" in scope.get("extensions", {}):
        body, headers = _refusal(missing, websocket=True)
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": "unauthorized"})
