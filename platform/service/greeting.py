"""Opening a session without a message: the role greets, token by token, and the greeting is its first turn.

`curl -N 'http://localhost:8080/v1/chat?role=sherlock'` is how the seed platform
starts a conversation. The greeting is the persona's own (or a neutral one for
a plain-text persona); it is written text, not inference, so no backend runs and
no generation metrics are recorded. It streams as the same `token` events and
final `done` event as an answer, and the `done` event carries the new session's
id once the greeting is stored, so the next message continues that session.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from opentelemetry import trace

from rolescope.inference.base import Usage
from rolescope.inference.tokens import count_tokens, tokenize
from rolescope.roles import Role
from rolescope.service.chat import (
    ChatReply,
    ChatService,
    DoneEvent,
    ErrorEvent,
    StreamEvent,
    TokenEvent,
    iso_utc,
    policy_view,
    role_attributes,
    trace_id_of,
)
from rolescope.service.errors import ServiceError, SessionAlreadyOpen, SessionNotFound
from rolescope.storage.base import ExchangeRecord, Turn

tracer = trace.get_tracer("rolescope")

# Written by the role's author, not generated: as sure as an answer can be.
GREETING_CONFIDENCE = 1.0


@dataclass(frozen=True, slots=True)
class OpenedSession:
    role: Role
    session_id: str
    owner: str | None


async def open_session(
    service: ChatService,
    role: str | None,
    session_id: str | None,
    owner: str | None,
    headers: Mapping[str, str] | None = None,
) -> OpenedSession:
    """Check the role and the session id before any byte is streamed, so a mistake is a plain HTTP error.

    The greeting comes from the version the session's first turn will reach: the release policy
    hashes the session id the same way for both.
    """
    resolved = service.role(role)
    if session_id is not None:
        existing = await service.store.get_session(session_id, policy_view(resolved), None)
        if existing is not None:
            if existing.owner != owner:
                raise SessionNotFound(f"no session {session_id!r}")
            raise SessionAlreadyOpen(
                f"session {session_id!r} is already open; send a message to continue it"
            )
    session_id = session_id or secrets.token_urlsafe(16)
    resolved = service.route(resolved.name, role, session_id, headers or {})
    return OpenedSession(resolved, session_id, owner)


async def greet(service: ChatService, opened: OpenedSession) -> AsyncIterator[StreamEvent]:
    """The greeting as token events, then `done` once it is stored as the session's first turn."""
    role = opened.role
    span = tracer.start_span("greeting", attributes={**role_attributes(role), "rolescope.stream": True})
    trace_id = trace_id_of(span)
    text = role.greeting
    tokens = tokenize(text)
    try:
        for index, token in enumerate(tokens):
            yield TokenEvent(token, index)
            # One event per send: the client sees the greeting arrive, as it would an answer.
            await asyncio.sleep(0)
        now = time.time()
        exchange = ExchangeRecord(
            session_id=opened.session_id,
            role_name=role.name,
            owner=opened.owner,
            user_turn=None,
            assistant_turn=Turn("assistant", text, now),
            role_version=role.version,  # the greeting is the session's first turn
        )
        try:
            await service.store.save_exchange(exchange, policy_view(role), span)
        except ServiceError as exc:
            yield ErrorEvent(exc)
            return
        yield DoneEvent(
            ChatReply(
                role.name,
                text,
                iso_utc(now),
                GREETING_CONFIDENCE,
                opened.session_id,
                trace_id,
                Usage(0, count_tokens(text)),
                role.version,
            )
        )
    finally:
        span.end()
