"""Any other JSON/SSE chat API, described by the same template YAML the load side reads.

    name: seed-chat
    request:
      method: POST
      path: /api/chat                 # may hold {session_id} or {role}, also in ?key={…}
      body: {message: "{message}", session_id: "{session_id}"}
    reply:
      stream: {text: content, output_tokens: usage.completion_tokens}
      json: {text: reply, output_tokens: usage.output_tokens}

The proxy reads the template backwards: a body string that is exactly
`{message}`, `{session_id}`, `{role}` or `{model}` says where that value is
in a request. `{message}` must be somewhere. Without `{session_id}` the
session is the `X-Session-Id` header, else each request is a session of its
own; without `{role}`/`{model}` the role recorded is the template's name.
The file is read and checked by the load side's own reader
(`loadtests.targets.template_spec`); the keys only the load side needs
(headers, end and error rules) are not used here.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from rolescope.capture.protocols.base import (
    CLIENT_HEADER,
    EVENT_STREAM,
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
from rolescope.errors import ConfigError
from rolescope.loadtests.targets import template_spec
from rolescope.loadtests.targets.template_spec import FieldPath, TemplateSpec, lookup

_PLACEHOLDER = re.compile(r"^\{(message|session_id|role|model|stream)\}$")
_IN_PATH = re.compile(r"\{(session_id|role|model|message)\}")


def _placeholders(value: Any, where: FieldPath) -> Iterator[tuple[str, FieldPath]]:
    if isinstance(value, str):
        found = _PLACEHOLDER.match(value)
        if found:
            yield found.group(1), where
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from _placeholders(inner, (*where, str(key)))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _placeholders(inner, (*where, index))


def _path_pattern(path: str) -> tuple[re.Pattern[str], dict[str, str]]:
    """A regex for the path part (placeholders as groups) and the query keys that carry placeholders."""
    route, _, query = path.partition("?")
    pieces = _IN_PATH.split(route)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(pieces))
    in_query = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        found = _PLACEHOLDER.match(value)
        if found:
            in_query[found.group(1)] = key
    return re.compile(regex + "$"), in_query


class _StreamReader:
    __slots__ = ("_chunks", "_events", "_names", "_spec", "_usage")

    def __init__(self, text: FieldPath, names: frozenset[bytes], usage: FieldPath | None) -> None:
        self._events = SseEvents()
        self._spec = (text, usage)
        self._names = names
        self._chunks = 0
        self._usage: int | None = None

    def feed(self, chunk: bytes) -> None:
        for name, data in self._events.feed(chunk):
            self._take(name, data)

    def _take(self, name: bytes, data: bytes) -> None:
        document = load_json(data)
        text, usage = self._spec
        if usage is not None and (count := as_count(lookup(document, usage))) is not None:
            self._usage = count
        if (not self._names or name in self._names) and as_text(lookup(document, text)):
            self._chunks += 1

    def finish(self) -> ReplyFacts:
        for name, data in self._events.close():
            self._take(name, data)
        return ReplyFacts(self._chunks if self._usage is None else self._usage)


class _JsonReader:
    __slots__ = ("_body", "_spec")

    def __init__(self, text: FieldPath | None, usage: FieldPath | None) -> None:
        self._body = JsonBody()
        self._spec = (text, usage)

    def feed(self, chunk: bytes) -> None:
        self._body.feed(chunk)

    def finish(self) -> ReplyFacts:
        document = self._body.document()
        text, usage = self._spec
        count = as_count(lookup(document, usage)) if usage is not None else None
        if count is not None:
            return ReplyFacts(count)
        words = as_text(lookup(document, text)) if text is not None else None
        return ReplyFacts(len(words.split()) if words else 0)


class TemplateProtocol:
    name = "template"

    def __init__(self, spec: TemplateSpec, file: Path) -> None:
        self.template_name = spec.name
        self._method = spec.request.method.upper()
        self._route, self._in_query = _path_pattern(spec.request.path)
        self._in_body = dict(_placeholders(spec.request.body, ()))
        found = set(self._in_body) | set(self._in_query) | set(self._route.groupindex)
        if "message" not in found:
            raise ConfigError(
                f'{file}: field `request.body`: capture needs a string that is exactly "{{message}}" '
                "in the body, the path or its query, to know where the message is"
            )
        stream, json_reply = spec.reply.stream, spec.reply.json_
        self._stream = (
            None
            if stream is None
            else (stream.text, frozenset(name.encode() for name in stream.events), stream.output_tokens)
        )
        self._json: tuple[FieldPath | None, FieldPath | None] = (
            (None, None) if json_reply is None else (json_reply.text, json_reply.output_tokens)
        )

    def handles(self, method: str, path: str) -> bool:
        return method == self._method and self._route.match(path) is not None

    def _value(self, name: str, request: HttpRequestView, body: Any, route: dict[str, str]) -> str | None:
        if name in self._in_body:
            value = lookup(body, self._in_body[name])
            return value if isinstance(value, str) and value else None
        if name in self._in_query:
            return as_text(request.query.get(self._in_query[name]))
        return as_text(route.get(name))

    def read_request(self, request: HttpRequestView) -> RequestFacts | None:
        matched = self._route.match(request.path)
        body = request.json_body() if self._in_body else None
        if matched is None or (self._in_body and body is None):
            return None
        route = matched.groupdict()
        message = self._value("message", request, body, route)
        if message is None:
            return None
        session = (
            self._value("session_id", request, body, route)
            or request.headers.get(SESSION_HEADER)
            or f"request-{secrets.token_hex(8)}"
        )
        role = self._value("role", request, body, route) or self._value("model", request, body, route)
        return RequestFacts(
            message=message,
            session_id=session,
            role=role or self.template_name,
            client_id=request.headers.get(CLIENT_HEADER),
            stream=lookup(body, self._in_body["stream"]) is True
            if "stream" in self._in_body
            else EVENT_STREAM in request.headers.get("accept", ""),
        )

    def reply_reader(self, event_stream: bool) -> _StreamReader | _JsonReader:
        if event_stream and self._stream is not None:
            return _StreamReader(*self._stream)
        return _JsonReader(*self._json)


def load_template(path: Path) -> TemplateProtocol:
    """Read a template file as the load side does; every problem is named with the file and the field."""
    return TemplateProtocol(template_spec.load_template(path), path)
