"""Server-sent events for the native chat API: `token` per chunk, `done` with the full answer, `error`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request

from rolescope.service.chat import ChatService, DoneEvent, ErrorEvent, PreparedChat, StreamEvent, TokenEvent
from rolescope.service.errors import error_body
from rolescope.service.shutdown import SHUTDOWN_CODE, SHUTDOWN_MESSAGE, DrainSignal, drain_aware

# Proxies (nginx) buffer responses unless told not to; a buffered stream is not a stream.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
PING_SECONDS = 15


def wants_event_stream(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


async def chat_events(service: ChatService, prepared: PreparedChat) -> AsyncIterator[ServerSentEvent]:
    async for event in as_server_sent(service.stream(prepared)):
        yield event


async def as_server_sent(events: AsyncIterator[StreamEvent]) -> AsyncIterator[ServerSentEvent]:
    async for event in events:
        if isinstance(event, TokenEvent):
            yield ServerSentEvent(json.dumps({"text": event.text, "index": event.index}), event="token")
        elif isinstance(event, DoneEvent):
            yield ServerSentEvent(json.dumps(event.reply.as_dict()), event="done")
        elif isinstance(event, ErrorEvent):
            yield ServerSentEvent(
                json.dumps(error_body(event.error.code, event.error.message)), event="error"
            )


def _shutting_down() -> ServerSentEvent:
    return ServerSentEvent(json.dumps(error_body(SHUTDOWN_CODE, SHUTDOWN_MESSAGE)), event="error")


def event_stream_response(events: AsyncIterator[ServerSentEvent], drain: DrainSignal) -> EventSourceResponse:
    # On SIGTERM a stream gets a grace period to finish, then ends with an `error` event (shutdown.py).
    return EventSourceResponse(
        drain_aware(events, drain, _shutting_down),
        headers=STREAM_HEADERS,
        ping=PING_SECONDS,
        shutdown_grace_period=drain.backstop_s,
    )
