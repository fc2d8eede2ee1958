"""rolescope's WebSocket chat (`/v1/ws`): a turn is a JSON frame out, `token` frames and a last one back.

The service keeps the conversation, so only the turn is sent, on the one
connection its session holds (the users open and close it; this module only
says what to send and how to read what comes back). `final` carries the
`POST /v1/chat` object, so output tokens come from its `usage`; an `error`
frame is a failure with its status, code and message, and frames that stop
before a terminal one (the connection closed mid-turn) are a failure too.
"""

from __future__ import annotations

import json
from typing import Any

from rolescope.loadtests.targets.base import (
    HttpCall,
    Reply,
    TargetOptions,
    Transport,
    TurnCall,
    bearer,
    trace_id_of,
    usage_count,
)

WS_PATH = "/v1/ws"
SUBPROTOCOL = "rolescope.v1"


class WsFrameReader:
    """Folds one turn's frames (text, with their arrival time) into a `Reply`."""

    __slots__ = ("_ended", "_final", "_reply", "_status")

    def __init__(self) -> None:
        self._reply = Reply()
        self._ended = False
        self._status = 0
        self._final: dict[str, Any] | None = None

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def status(self) -> int:
        return self._status

    def feed(self, line: bytes, now: float) -> None:
        if self._ended:
            return
        try:
            frame = json.loads(line)
        except ValueError:
            self._end(f"not a JSON frame: {line[:80]!r}")
            return
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "token":
            if frame.get("text"):
                self._reply.token_times.append(now)
        elif kind == "final":
            response = frame.get("response")
            self._final = response if isinstance(response, dict) else {}
            self._status = 200
            self._end(None)
        elif kind == "error":
            error = frame.get("error") if isinstance(frame.get("error"), dict) else {}
            status = frame.get("status")
            self._status = status if isinstance(status, int) else 0
            self._end(f"error frame {status}: {error.get('code')}: {error.get('message')}"[:200])

    def _end(self, error: str | None) -> None:
        self._ended = True
        self._reply.error = error

    def close(self, now: float) -> Reply:
        reply = self._reply
        if not self._ended:
            reply.error = "the connection ended before the turn's final frame"
        elif self._final is not None:
            usage = self._final.get("usage")
            tokens = usage.get("output_tokens") if isinstance(usage, dict) else None
            reply.output_tokens = tokens if isinstance(tokens, int) else len(reply.token_times)
            reply.text = str(self._final.get("content", ""))
            reply.trace_id = trace_id_of(self._final)
            reply.input_tokens = usage_count(self._final, "input_tokens")
            if not reply.token_times:
                reply.error = "final frame without a token"
        else:
            reply.output_tokens = len(reply.token_times)
        return reply


class WebSocketAdapter:
    stateless = False
    transport: Transport = "websocket"

    def __init__(self, options: TargetOptions, api_key: str | None) -> None:
        self._headers = bearer(dict(options.headers), api_key)

    def request(self, call: TurnCall) -> HttpCall:
        """The upgrade (path, headers) and, as its body, the turn's one frame."""
        frame = {"message": call.message, "session_id": call.session_id, "role": call.role}
        return HttpCall("GET", WS_PATH, json.dumps(frame).encode(), self._headers, stream=True)

    def stream_reader(self) -> WsFrameReader:
        return WsFrameReader()

    def read_body(self, body: bytes) -> Reply:
        """A whole turn's frames, one a line (what a recorded turn looks like)."""
        reader = WsFrameReader()
        for line in body.splitlines():
            if line.strip():
                reader.feed(line, 0.0)
        return reader.close(0.0)
