"""Input limits: body size, message length, tokens per reply, turns per session.

The body-size cap is a pure ASGI middleware so an oversize request is refused
(413) after reading at most `max_body_bytes + 1` bytes — from `Content-Length`
before reading anything, or while a chunked body streams in — instead of
buffering whatever a client sends. The other caps are plain checks the chat
layer calls with values it has already parsed; each failure carries the HTTP
status, a stable code and a sentence that names the limit and the value.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rolescope.service.errors import ServiceError, error_body

REASON_TOO_LARGE = "too_large"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int = 64 * 1024
    max_message_chars: int = 4000
    max_output_tokens: int = 1024
    max_turns_per_session: int = 1000


class LimitExceeded(ServiceError):
    """An input beyond a configured cap; the service answers `status` with `code` and this message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def check_message(message: str, limits: Limits) -> None:
    if len(message) > limits.max_message_chars:
        raise LimitExceeded(
            413,
            "message_too_long",
            f"message has {len(message)} characters; the limit is {limits.max_message_chars}",
        )


def check_turns(existing_turns: int, limits: Limits) -> None:
    """Refuse a new exchange (two turns) that would take a session past its turn cap."""
    if existing_turns + 2 > limits.max_turns_per_session:
        raise LimitExceeded(
            422,
            "session_full",
            f"session already holds {existing_turns} turns; the limit is {limits.max_turns_per_session} "
            "per session — start a new session (omit session_id)",
        )


def cap_output_tokens(requested: int | None, limits: Limits) -> int:
    """The reply-length budget: what the request asked for, never above the cap."""
    if requested is not None and requested > limits.max_output_tokens:
        raise LimitExceeded(
            422,
            "too_many_tokens",
            f"max_tokens is {requested}; the limit per reply is {limits.max_output_tokens}",
        )
    return limits.max_output_tokens if requested is None else max(1, requested)


class BodySizeLimitMiddleware:
    """Answers 413 for a request body over `max_bytes`, reading no more than `max_bytes + 1` of it."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, on_reject: Callable[[str], None] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method", "GET") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._too_large(send, declared)
            return
        # Buffer the (bounded) body first: once the app has started reading, a 413 could no
        # longer be sent cleanly, and the cap keeps the buffer small.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send, size)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _too_large(self, send: Send, seen: int) -> None:
        if self.on_reject is not None:
            # Counting a refusal must never turn it into a 500.
            with contextlib.suppress(Exception):
                self.on_reject(REASON_TOO_LARGE)
        body = json.dumps(
            error_body(
                "payload_too_large",
                f"request body is larger than the limit of {self.max_bytes} bytes "
                f"(at least {seen} bytes sent)",
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    # The rest of the body is left unread, so the connection cannot be reused.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        # After the body, pass through so the app still learns about a client disconnect.
        return await receive()

    return replayed
