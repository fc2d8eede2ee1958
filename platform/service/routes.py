"""The native HTTP API: chat (JSON or SSE), roles, session history, health and readiness."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from rolescope.service.api_models import (
    NON_BLANK_PATTERN,
    SESSION_ID_PATTERN,
    ChatRequest,
    ChatResponse,
    ErrorResponse,
    RoleInfo,
    RolesResponse,
    RoleVersionInfo,
    SessionResponse,
    StatusResponse,
    TurnBody,
)
from rolescope.service.chat import ChatCommand, ChatService, iso_utc
from rolescope.service.context import context_of
from rolescope.service.greeting import greet, open_session
from rolescope.service.routing import release_of
from rolescope.service.sse import as_server_sent, chat_events, event_stream_response, wants_event_stream

router = APIRouter()


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


_SSE_DOC = {
    "text/event-stream": {
        # One schema per event, as SSE-aware clients (and schemathesis) parse the stream.
        "schema": {
            "type": "object",
            "properties": {"event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"}},
        },
        "example": 'event: token\ndata: {"text": "Elementary", "index": 0}\n\n'
        'event: done\ndata: {"role": "sherlock", "content": "Elementary.", ...}\n\n',
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("the body is not valid JSON"),
    401: _error("an API key is required and was missing or wrong"),
    404: _error("unknown role"),
    409: _error(
        "the session belongs to another role, is already open (GET without a message), "
        "or the Idempotency-Key's first request is running"
    ),
    413: _error("request body too large"),
    422: _error("invalid request"),
    500: _error("the backend failed to answer"),
    503: _error("overloaded or session memory unavailable (Retry-After)"),
    504: _error("inference timed out"),
}
# The GET form always streams, so its answer carries no JSON body to follow a link from.
STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "an SSE stream: token events, then the full answer", "content": _SSE_DOC},
    **_ERRORS,
}
CHAT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the answer, or an SSE stream when asked for",
        "content": _SSE_DOC,
        # OpenAPI links: clients (and schemathesis' stateful phase) learn that the JSON answer's
        # session_id opens the session's history. A streamed answer has no JSON body to follow.
        "links": {
            "GetSession": {
                "operationRef": "#/paths/~1v1~1sessions~1{session_id}/get",
                "parameters": {"session_id": "$response.body#/session_id"},
                "description": "the session's history (JSON answers; a stream carries it in its last event)",
            }
        },
    },
    **_ERRORS,
}


def chat_service(request: Request) -> ChatService:
    return context_of(request).chat_service


def owner_of(request: Request) -> str | None:
    """The caller's identity when an authentication middleware set one; None when auth is off."""
    owner: str | None = getattr(request.state, "owner", None)
    return owner


async def _answer(request: Request, command: ChatCommand) -> Response:
    context = context_of(request)
    service = context.chat_service
    prepared = await service.prepare(command)
    if command.stream:
        return event_stream_response(chat_events(service, prepared), context.drain)
    reply = await service.complete(prepared)
    return JSONResponse(reply.as_dict())


@router.post("/v1/chat", response_model=ChatResponse, responses=CHAT_RESPONSES, tags=["chat"])
async def post_chat(
    body: ChatRequest,
    request: Request,
    role: Annotated[str | None, Query(description="role name (the body's `role` wins)")] = None,
) -> Response:
    """Send a message to a role. Streams SSE with `"stream": true` or `Accept: text/event-stream`."""
    command = ChatCommand(
        message=body.message,
        role=body.role or role,
        session_id=body.session_id,
        owner=owner_of(request),
        client_id=request.headers.get("x-client-id"),
        stream=body.stream or wants_event_stream(request),
        idempotency_key=request.headers.get("idempotency-key"),
        headers=request.headers,
    )
    return await _answer(request, command)


@router.get("/v1/chat", response_model=ChatResponse, responses=STREAM_RESPONSES, tags=["chat"])
async def get_chat(
    request: Request,
    message: Annotated[
        str | None, Query(min_length=1, pattern=NON_BLANK_PATTERN, description="without one, opens a session")
    ] = None,
    role: str | None = None,
    session_id: Annotated[str | None, Query(pattern=SESSION_ID_PATTERN)] = None,
) -> Response:
    """Streaming chat for `curl -N 'http://127.0.0.1:8080/v1/chat?role=sherlock&message=Hello'`.

    Without a message it opens a session: the role's greeting streams, and the `done` event
    carries the new `session_id`.
    """
    if message is None:
        context = context_of(request)
        opened = await open_session(
            context.chat_service, role, session_id, owner_of(request), request.headers
        )
        return event_stream_response(as_server_sent(greet(context.chat_service, opened)), context.drain)
    command = ChatCommand(
        message=message,
        role=role,
        session_id=session_id,
        owner=owner_of(request),
        client_id=request.headers.get("x-client-id"),
        stream=True,
        headers=request.headers,
    )
    return await _answer(request, command)


@router.get("/v1/roles", response_model=RolesResponse, tags=["roles"])
async def list_roles(request: Request) -> RolesResponse:
    registry = chat_service(request).roles
    roles = registry.values()
    return RolesResponse(
        roles=[
            RoleInfo(
                name=r.name,
                version=r.version,
                display_name=r.display_name,
                description=r.description,
                model=r.inference.model,
                backend=r.inference.backend,
                greeting=r.greeting,
                versions=[
                    RoleVersionInfo(
                        version=v.version,
                        model=v.inference.model,
                        backend=v.inference.backend,
                        default=registry.is_default(v),
                        weight=release.weights.get(v.version, 0.0) if release is not None else None,
                    )
                    for v in registry.versions(r.name)
                ],
            )
            for r in roles
            for release in (release_of(registry, r.name),)
        ]
    )


@router.get(
    "/v1/sessions/{session_id}",
    response_model=SessionResponse,
    tags=["sessions"],
    responses={404: _error("no such session (or not yours)"), 422: _error("invalid session id")},
)
async def get_session(
    request: Request, session_id: Annotated[str, Path(pattern=SESSION_ID_PATTERN)]
) -> SessionResponse:
    role, session = await chat_service(request).history(session_id, owner_of(request))
    return SessionResponse(
        session_id=session.session_id,
        role=role.name,
        created_at=iso_utc(session.created_at),
        updated_at=iso_utc(session.updated_at),
        turns=[
            TurnBody(speaker=t.speaker, content=t.content, timestamp=iso_utc(t.timestamp))
            for t in session.turns
        ],
    )


@router.get("/healthz", response_model=StatusResponse, tags=["operations"])
async def healthz() -> StatusResponse:
    """Liveness: the process serves HTTP."""
    return StatusResponse(status="ok")


@router.get(
    "/readyz",
    response_model=StatusResponse,
    tags=["operations"],
    responses={503: {"model": StatusResponse, "description": "not ready"}},
)
async def readyz(request: Request) -> Response:
    """Readiness: roles loaded and session memory answering."""
    service = chat_service(request)
    store_ok = await service.store.inner.ping()
    body = StatusResponse(
        status="ready" if store_ok else "unavailable",
        detail={"roles": len(service.roles), "store": service.store.inner.backend_name},
    )
    return JSONResponse(
        body.model_dump(),
        status_code=200 if store_ok else 503,
        headers=None if store_ok else {"Retry-After": "1"},
    )
