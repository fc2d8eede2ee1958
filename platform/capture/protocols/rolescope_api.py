"""rolescope's own chat API: `POST /v1/chat` (JSON or SSE) and `GET /v1/chat` (SSE).

The request names the message, and may name the session and role (the body's
`role` wins over `?role=`); when it names no session the service makes one and
says which in its reply (the JSON body, or the final `done` event), and the
same for the role it picked. Output tokens come from the reply's
`usage.output_tokens`, else from the number of `token` events.
"""

from __future__ import annotations

from typing import Any

from rolescope.capture.protocols.base import (
    CLIENT_HEADER,
    EVENT_STREAM,
    HttpRequestView,
    JsonBody,
    ReplyFacts,
    RequestFacts,
    SseEvents,
    as_count,
    as_text,
    load_json,
)

CHAT_PATH = "/v1/chat"


def _reply_facts(document: Any, counted: int) -> ReplyFacts:
    if not isinstance(document, dict):
        return ReplyFacts(counted)
    usage = document.get("usage")
    tokens = as_count(usage.get("output_tokens")) if isinstance(usage, dict) else None
    return ReplyFacts(
        output_tokens=counted if tokens is None else tokens,
        session_id=as_text(document.get("session_id")),
        role=as_text(document.get("role")),
    )


class _StreamReader:
    __slots__ = ("_done", "_events", "_tokens")

    def __init__(self) -> None:
        self._events = SseEvents()
        self._tokens = 0
        self._done: Any = None

    def feed(self, chunk: bytes) -> None:
        for name, data in self._events.feed(chunk):
            self._take(name, data)

    def _take(self, name: bytes, data: bytes) -> None:
        if name == b"token":
            self._tokens += 1
        elif name == b"done":
            self._done = load_json(data)

    def finish(self) -> ReplyFacts:
        for name, data in self._events.close():
            self._take(name, data)
        return _reply_facts(self._done, self._tokens)


class _JsonReader:
    __slots__ = ("_body",)

    def __init__(self) -> None:
        self._body = JsonBody()

    def feed(self, chunk: bytes) -> None:
        self._body.feed(chunk)

    def finish(self) -> ReplyFacts:
        return _reply_facts(self._body.document(), 0)


class RolescopeProtocol:
    name = "rolescope"

    def handles(self, method: str, path: str) -> bool:
        return path == CHAT_PATH and method in ("POST", "GET")

    def read_request(self, request: HttpRequestView) -> RequestFacts | None:
        client = request.headers.get(CLIENT_HEADER)
        if request.method == "GET":
            source: dict[str, Any] = dict(request.query)
            role = as_text(source.get("role"))
        else:
            body = request.json_body()
            if body is None:
                return None
            source = body
            role = as_text(body.get("role")) or as_text(request.query.get("role"))
        message = source.get("message")
        if not isinstance(message, str) or not message:
            return None
        stream = (
            request.method == "GET"
            or source.get("stream") is True
            or EVENT_STREAM in request.headers.get("accept", "")
        )
        return RequestFacts(
            message=message,
            session_id=as_text(source.get("session_id")),
            role=role,
            client_id=client,
            stream=stream,
        )

    def reply_reader(self, event_stream: bool) -> _StreamReader | _JsonReader:
        return _StreamReader() if event_stream else _JsonReader()
