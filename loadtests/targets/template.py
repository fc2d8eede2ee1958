"""Any other JSON/SSE role service, described by a template YAML (see `template_spec`).

A call streams when the turn asks for it and the template can read a stream,
or when the template can read nothing else. Every SSE event whose text field
is non-empty is a token; the stream must end with the template's end marker,
otherwise it was cut off and the request failed.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from rolescope.loadtests.targets.base import (
    HttpCall,
    JsonHttpAdapter,
    Reply,
    TargetOptions,
    TurnCall,
)
from rolescope.loadtests.targets.history import chat_messages
from rolescope.loadtests.targets.sse_events import SseEvent, SseFramer
from rolescope.loadtests.targets.template_spec import (
    PLACEHOLDER,
    JsonReplySpec,
    StreamReplySpec,
    TemplateSpec,
    load_template,
    lookup,
)


def render(value: Any, values: dict[str, Any]) -> Any:
    """The body with placeholders filled; a string that is exactly one placeholder takes its value."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole is not None:
            return values[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: _as_text(values[m.group(1)]), value)
    if isinstance(value, dict):
        return {key: render(inner, values) for key, inner in value.items()}
    if isinstance(value, list):
        return [render(inner, values) for inner in value]
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _present(value: Any) -> bool:
    return value is not None and value is not False and value != ""


class TemplateStreamReader:
    __slots__ = ("_ended", "_framer", "_parts", "_reply", "_spec")

    def __init__(self, spec: StreamReplySpec) -> None:
        self._spec = spec
        self._framer = SseFramer()
        self._reply = Reply()
        self._parts: list[str] = []
        self._ended = False

    def feed(self, line: bytes, now: float) -> None:
        event = self._framer.feed(line)
        if event is not None and not self._ended:
            self._event(event, now)

    def _event(self, event: SseEvent, now: float) -> None:
        spec, reply = self._spec, self._reply
        end = spec.end
        if end.data is not None and event.data.strip() == end.data:
            self._ended = True
            return
        try:
            payload: Any = json.loads(event.data)
        except ValueError:
            payload = event.data
        error = spec.error
        if error is not None and (
            event.event == error.event or (error.field is not None and _present(lookup(payload, error.field)))
        ):
            detail = lookup(payload, error.field) if error.field is not None else None
            reply.error = (
                reply.error or f"error event: {str(detail if detail is not None else payload)[:200]}"
            )
            return
        if not spec.events or event.event in spec.events:
            text = lookup(payload, spec.text)
            if isinstance(text, str) and text:
                reply.token_times.append(now)
                self._parts.append(text)
        if spec.output_tokens is not None:
            tokens = lookup(payload, spec.output_tokens)
            if isinstance(tokens, int) and not isinstance(tokens, bool):
                reply.output_tokens = tokens
        if event.event == end.event or (end.field is not None and _present(lookup(payload, end.field))):
            self._ended = True

    def close(self, now: float) -> Reply:
        last = self._framer.close()
        if last is not None and not self._ended:
            self._event(last, now)
        reply = self._reply
        reply.text = "".join(self._parts)
        if not reply.output_tokens:
            reply.output_tokens = len(reply.token_times)
        if reply.error is None:
            if not reply.token_times:
                reply.error = "stream ended without a token"
            elif not self._ended:
                reply.error = "stream ended without its end marker (truncated)"
        return reply


class TemplateAdapter(JsonHttpAdapter):
    def __init__(self, options: TargetOptions, api_key: str | None, spec: TemplateSpec | None = None) -> None:
        if spec is None:
            if options.template is None:
                raise ValueError("the template protocol needs a template file")
            spec = load_template(options.template)
        self.spec = spec
        self._model = options.model
        self._uses = spec.placeholders()
        super().__init__({**spec.request.headers, **options.headers}, api_key)

    @property
    def stateless(self) -> bool:
        return "history" in self._uses

    def streams(self, wanted: bool) -> bool:
        reply = self.spec.reply
        return reply.stream is not None and (wanted or reply.json_ is None)

    def request(self, call: TurnCall) -> HttpCall:
        stream = self.streams(call.stream)
        values: dict[str, Any] = {
            "message": call.message,
            "session_id": call.session_id,
            "role": call.role,
            "model": self._model or call.role,
            "stream": stream,
            "history": chat_messages(call)[:-1] if "history" in self._uses else [],
        }
        request = self.spec.request
        path = PLACEHOLDER.sub(lambda m: quote(_as_text(values[m.group(1)]), safe=""), request.path)
        body = None if request.body is None else json.dumps(render(request.body, values)).encode()
        return self.call(request.method, path, body, stream)

    def stream_reader(self) -> TemplateStreamReader:
        assert self.spec.reply.stream is not None
        return TemplateStreamReader(self.spec.reply.stream)

    def read_body(self, body: bytes) -> Reply:
        spec: JsonReplySpec | None = self.spec.reply.json_
        if spec is None:
            return Reply(error="the template reads no JSON answers")
        try:
            answer = json.loads(body)
        except ValueError:
            return Reply(error=f"unreadable answer: {body[:80]!r}")
        if spec.error is not None and _present(lookup(answer, spec.error)):
            return Reply(error=f"error: {str(lookup(answer, spec.error))[:200]}")
        text = lookup(answer, spec.text)
        if not isinstance(text, str):
            path = ".".join(map(str, spec.text))
            return Reply(error=f"unreadable answer: no text at {path}")
        tokens = lookup(answer, spec.output_tokens) if spec.output_tokens is not None else None
        counted = tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else len(text.split())
        return Reply(output_tokens=counted, text=text)
