"""The WebSocket chat protocol as pure functions: incoming frames parsed, outgoing frames built.

One JSON text frame in per turn (`{"message", "session_id"?, "role"?,
"idempotency_key"?}`); out, `token` frames, then one `final` frame carrying the
same object as `POST /v1/chat`, or one `error` frame with the HTTP API's codes
and the status the same failure would have had there. No I/O here, so every
rule is testable without a socket.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rolescope.service.api_models import SESSION_ID_PATTERN
from rolescope.service.errors import error_body

# Offered by clients that send their API key as a subprotocol (browsers cannot set headers on a
# WebSocket); the server answers with this one, never echoing the key back.
SUBPROTOCOL: Final = "rolescope.v1"
# The telemetry middleware leaves a `TurnRecorder` under this key of the connection's scope state.
TURN_RECORDER_STATE_KEY: Final = "rolescope_ws_turn_recorder"

# Close codes (RFC 6455 §7.4.1).
CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_POLICY: Final = 1008
CLOSE_TOO_BIG: Final = 1009
CLOSE_TRY_AGAIN_LATER: Final = 1013

TURN_IN_PROGRESS: Final = "turn_in_progress"

TurnRecorder = Callable[[str | None, int, float], None]
"""Told once per turn: the role that answered (None if none was resolved), the HTTP-equivalent
status, and the turn's seconds from the client's frame to the terminal frame."""


class TurnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1)
    session_id: str | None = Field(default=None, pattern=SESSION_ID_PATTERN)
    role: str | None = None
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)


@dataclass(frozen=True, slots=True)
class FrameError:
    status: int
    code: str
    message: str


def parse_turn(text: str) -> TurnRequest | FrameError:
    """A client frame as a turn, or the error frame's content naming every problem at once."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        return FrameError(400, "bad_request", f"the frame is not valid JSON: {exc}")
    if not isinstance(data, dict):
        expected = f'expected a JSON object such as {{"message": "Hello"}}, got {type(data).__name__}'
        return FrameError(422, "invalid_request", expected)
    try:
        return TurnRequest.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in error['loc']) or 'frame'}: {error['msg']}" for error in exc.errors()
        ]
        return FrameError(422, "invalid_request", "; ".join(problems))


def token_frame(text: str, index: int) -> str:
    return json.dumps({"type": "token", "text": text, "index": index})


def final_frame(response: dict[str, Any]) -> str:
    return json.dumps({"type": "final", "response": response})


def error_frame(status: int, code: str, message: str) -> str:
    return json.dumps({"type": "error", "status": status, **error_body(code, message)})


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def offered_subprotocols(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    offered: list[str] = []
    for key, value in headers:
        if key.lower() == b"sec-websocket-protocol":
            offered += [token.strip() for token in value.decode("latin-1").split(",") if token.strip()]
    return offered


def parse_origins(setting: str | None) -> frozenset[str]:
    """`ws_allowed_origins` (comma-separated `scheme://host[:port]`, or `*`) as normalised origins."""
    return frozenset(o.strip().rstrip("/").lower() for o in (setting or "").split(",") if o.strip())


def origin_allowed(origin: str | None, host: str | None, allowed: frozenset[str]) -> bool:
    """No Origin (not a browser) and an Origin naming the Host the client connected to are allowed;
    any other origin only when listed (or when the list holds `*`).

    Browsers always send Origin on a WebSocket upgrade and cannot forge it, so this stops
    another site's page from opening a chat with the user's ambient credentials.
    """
    if origin is None:
        return True
    normalised = origin.strip().rstrip("/").lower()
    if "*" in allowed or normalised in allowed:
        return True
    origin_host = urlsplit(normalised).netloc
    return bool(host) and origin_host == (host or "").strip().lower()
