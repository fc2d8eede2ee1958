"""Server-sent events for the native chat API: `token` per chunk, `done` with the full answer, `error`.

Events are encoded straight to the bytes that go on the wire (`event: …`, `data: …`, CRLF
line ends, one blank line after each), the format the service has always sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from json.encoder import encode_basestring_ascii

from starlette.requests import Request

from rolescope.service.chat import ChatService, DoneEvent, ErrorEvent, PreparedChat, StreamEvent, TokenEvent
from rolescope.service.errors import error_body
from rolescope.service.shutdown import SHUTDOWN_CODE, SHUTDOWN_MESSAGE, DrainSignal, drain_aware
from rolescope.service.sse_response import EventStreamResponse

# Proxies (nginx) buffer responses unless told not to; a buffered stream is not a stream.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
PING_SECONDS = 15
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def wants_event_stream(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


def sse_event(data: str, event: str | None = None) -> bytes:
    """One event: an optional `event:` line, one `data:` line per line of `data`, a blank line."""
    head = "" if event is None else f"event: {_LINE_BREAK.sub('', event)}\r\n"
    lines = "".join(f"data: {line}\r\n" for line in _LINE_BREAK.split(data))
    return f"{head}{lines}\r\n".encode()


def token_event(text: str, index: int) -> bytes:
    # Byte for byte `sse_event(json.dumps({"text": text, "index": index}), "token")`, without the
    # dict, the encoder object and the line split (JSON escapes every line break): this runs per token.
    data = f'{{"text": {encode_basestring_ascii(text)}, "index": {index}}}'
    return f"event: token\r\ndata: {data}\r\n\r\n".encode()


def chat_events(service: ChatService, prepared: PreparedChat) -> AsyncIterator[bytes]:
    return as_server_sent(service.stream(prepared))


async def as_server_sent(events: AsyncIterator[StreamEvent]) -> AsyncIterator[bytes]:
    async for event in events:
        if type(event) is TokenEvent:
            yield token_event(event.text, event.index)
        elif isinstance(event, DoneEvent):
            yield sse_event(json.dumps(event.reply.as_dict()), "done")
        elif isinstance(event, ErrorEvent):
            yield sse_event(json.dumps(error_body(event.error.code, event.error.message)), "error")


def _shutting_down() -> bytes:
    return sse_event(json.dumps(error_body(SHUTDOWN_CODE, SHUTDOWN_MESSAGE)), "error")


def event_stream_response(events: AsyncIterator[bytes], drain: DrainSignal) -> EventStreamResponse:
    # On SIGTERM a stream gets a grace period to finish, then ends with an `error` event (shutdown.py).
    return EventStreamResponse(
        drain_aware(events, drain, _shutting_down), drain, headers=STREAM_HEADERS, ping_s=PING_SECONDS
    )
