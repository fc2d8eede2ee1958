"""OpenAI-compatible chat completions: `POST …/chat/completions`, streaming and not.

The model is the role (as rolescope's own endpoint has it), the message is the
last user message. The protocol is stateless: a client resends the whole
conversation each turn, so a session is the `X-Session-Id` header when the
client sends one, else the conversation's identity, a hash of the model, the
`user` field and the first user message, which every later turn of that
conversation repeats. Output tokens come from `usage.completion_tokens` (the
final chunk with `stream_options.include_usage`), else from the chunks whose
delta carried content (reasoning or empty deltas are not output text), else,
for a JSON reply without usage, from the words of its content.
"""

from __future__ import annotations

import hashlib
from typing import Any

from rolescope.capture.protocols.base import (
    CLIENT_HEADER,
    SESSION_HEADER,
    HttpRequestView,
    JsonBody,
    ReplyFacts,
    RequestFacts,
    SseEvents,
    as_count,
    as_text,
    load_json,
)

PATH_SUFFIX = "/chat/completions"


def message_text(message: Any) -> str:
    """A message's text, whether `content` is a string or a list of typed parts."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def conversation_id(model: str, user: str, first_user_message: str) -> str:
    digest = hashlib.blake2b(
        "\x00".join((model, user, first_user_message)).encode("utf-8"), digest_size=12
    ).hexdigest()
    return f"conversation-{digest}"


def _usage_tokens(document: dict[str, Any]) -> int | None:
    usage = document.get("usage")
    return as_count(usage.get("completion_tokens")) if isinstance(usage, dict) else None


class _StreamReader:
    __slots__ = ("_chunks", "_events", "_usage")

    def __init__(self) -> None:
        self._events = SseEvents()
        self._chunks = 0
        self._usage: int | None = None

    def feed(self, chunk: bytes) -> None:
        for _, data in self._events.feed(chunk):
            self._take(data)

    def _take(self, data: bytes) -> None:
        if data == b"[DONE]":
            return
        document = load_json(data)
        if not isinstance(document, dict):
            return
        usage = _usage_tokens(document)
        if usage is not None:
            self._usage = usage
        choices = document.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            delta = choices[0].get("delta")
            if isinstance(delta, dict) and as_text(delta.get("content")):
                self._chunks += 1

    def finish(self) -> ReplyFacts:
        for _, data in self._events.close():
            self._take(data)
        return ReplyFacts(self._chunks if self._usage is None else self._usage)


class _JsonReader:
    __slots__ = ("_body",)

    def __init__(self) -> None:
        self._body = JsonBody()

    def feed(self, chunk: bytes) -> None:
        self._body.feed(chunk)

    def finish(self) -> ReplyFacts:
        document = self._body.document()
        if document is None:
            return ReplyFacts(0)
        usage = _usage_tokens(document)
        if usage is not None:
            return ReplyFacts(usage)
        choices = document.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else None
        text = message_text(first.get("message")) if isinstance(first, dict) else ""
        return ReplyFacts(len(text.split()))


class OpenAIProtocol:
    name = "openai"

    def handles(self, method: str, path: str) -> bool:
        return method == "POST" and path.endswith(PATH_SUFFIX)

    def read_request(self, request: HttpRequestView) -> RequestFacts | None:
        body = request.json_body()
        messages = body.get("messages") if body is not None else None
        if body is None or not isinstance(messages, list) or not messages:
            return None
        users = [message_text(m) for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        last = messages[-1]
        if not users or not isinstance(last, dict) or last.get("role") != "user" or not users[-1]:
            return None
        model = as_text(body.get("model")) or ""
        user = as_text(body.get("user")) or ""
        session = request.headers.get(SESSION_HEADER) or conversation_id(model, user, users[0])
        limit = as_count(body.get("max_completion_tokens")) or as_count(body.get("max_tokens"))
        return RequestFacts(
            message=users[-1],
            session_id=session,
            role=model or None,
            client_id=request.headers.get(CLIENT_HEADER) or (user or None),
            max_tokens=limit or None,
            stream=body.get("stream") is True,
        )

    def reply_reader(self, event_stream: bool) -> _StreamReader | _JsonReader:
        return _StreamReader() if event_stream else _JsonReader()
