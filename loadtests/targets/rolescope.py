"""rolescope's own `POST /v1/chat`: the service keeps the conversation, so only the turn is sent.

Streams are read by `rolescope.loadtests.sse` (its byte-level fast path for
`token` events); this is the only place the load side uses that parser. A
stream that closes before its `done` event was cut off and is a failure, like
an in-stream `error` event.
"""

from __future__ import annotations

import json

from rolescope.loadtests.sse import StreamParser
from rolescope.loadtests.targets.base import (
    HttpCall,
    JsonHttpAdapter,
    Reply,
    TargetOptions,
    TurnCall,
    trace_id_of,
    usage_count,
)

CHAT_PATH = "/v1/chat"


def _version_of(answer: object) -> str | None:
    """The answer's `role_version` (services before versions send none)."""
    version = answer.get("role_version") if isinstance(answer, dict) else None
    return str(version) if version else None


class RolescopeStreamReader:
    __slots__ = ("_parser",)

    def __init__(self) -> None:
        self._parser = StreamParser()

    def feed(self, line: bytes, now: float) -> None:
        self._parser.feed(line, now)

    def close(self, now: float) -> Reply:
        reading = self._parser.close(now)
        final = reading.final or {}
        reply = Reply(
            token_times=reading.token_times,
            output_tokens=reading.output_tokens(),
            text=str(final.get("content", "")),
            input_tokens=usage_count(final, "input_tokens"),
            role_version=_version_of(final),
            trace_id=trace_id_of(final),
        )
        if reading.error is not None:
            reply.error = f"error event: {reading.error}"
        elif reading.first_token_at is None:
            reply.error = "stream ended without a token"
        elif reading.final is None:
            reply.error = "stream ended before its done event (truncated)"
        return reply


class RolescopeAdapter(JsonHttpAdapter):
    stateless = False

    def __init__(self, options: TargetOptions, api_key: str | None) -> None:
        super().__init__(options.headers, api_key)

    def request(self, call: TurnCall) -> HttpCall:
        body = {
            "message": call.message,
            "session_id": call.session_id,
            "role": call.role,
            "stream": call.stream,
        }
        return self.call("POST", CHAT_PATH, json.dumps(body).encode(), call.stream)

    def stream_reader(self) -> RolescopeStreamReader:
        return RolescopeStreamReader()

    def read_body(self, body: bytes) -> Reply:
        try:
            answer = json.loads(body)
            return Reply(
                output_tokens=int(answer["usage"]["output_tokens"]),
                text=str(answer.get("content", "")),
                input_tokens=usage_count(answer, "input_tokens"),
                role_version=_version_of(answer),
                trace_id=trace_id_of(answer),
            )
        except (ValueError, KeyError, TypeError) as exc:
            return Reply(error=f"unreadable answer: {exc}")
