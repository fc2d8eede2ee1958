"""The interface every target protocol implements, and the plain data that crosses it.

A user hands an adapter a `TurnCall` (the planned turn, its session and, for
stateless protocols, the conversation so far); the adapter answers with an
`HttpCall` to send. The answer comes back through a `ReplyReader` (fed line by
line with arrival times when streamed, or given the whole body) and ends as a
`Reply`: token arrival times, output tokens, the reply text and an error. Users,
shapes, schedules and SLIs only ever see these types, never a protocol.

An adapter declares its `transport`. Over `"http"` the call is sent as it is;
over `"websocket"` the call's path is the upgrade's, its headers go with the
upgrade, its body is the one frame a turn sends, and its reader is a
`FrameReader` fed each frame until `ended`: one connection carries a session's
turns, so the end of a turn is a frame, not the end of a response.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

ApiName = Literal["rolescope", "openai", "template", "websocket"]
Transport = Literal["http", "websocket"]
# Fewer tokens than this cannot tell a stream from a single write.
ALL_AT_ONCE_MIN_TOKENS = 3
ALL_AT_ONCE_SPAN_S = 0.0005
_SECRET_HEADER_WORDS = ("authorization", "key", "token", "secret", "cookie", "password")


class TargetOptions(BaseModel):
    """How to speak to the target; travels to every load process as one JSON environment variable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api: ApiName = "rolescope"
    template: Path | None = Field(default=None, description="template YAML (api=template)")
    model: str | None = Field(default=None, description="model to ask for; default: the traffic's role")
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers")
    api_key_env: str | None = Field(default=None, description="variable holding the API key")
    max_tokens: int | None = Field(default=None, ge=1)
    ignore_eos: bool = False
    history_turns: int | None = Field(default=None, ge=0, description="earlier exchanges resent")
    roles_path: Path | None = Field(default=None, description="role file or folder: personas")
    role_map: dict[str, str] = Field(default_factory=dict, description="traffic role -> role sent")
    insecure: bool = False
    ca_file: Path | None = None
    client_cert: Path | None = Field(default=None, description="PEM certificate presented (mutual TLS)")
    client_key: Path | None = Field(default=None, description="PEM private key of client_cert")

    def key_variable(self) -> str:
        """The environment variable the API key is read from."""
        if self.api_key_env:
            return self.api_key_env
        return "OPENAI_API_KEY" if self.api == "openai" else "ROLESCOPE_LOAD_API_KEY"

    def shown(self) -> dict[str, object]:
        """These options as written to settings.json: header values that look secret are masked."""
        data = self.model_dump(mode="json")
        data["headers"] = {
            name: "***" if any(word in name.lower() for word in _SECRET_HEADER_WORDS) else value
            for name, value in self.headers.items()
        }
        return data


@dataclass(frozen=True, slots=True)
class Exchange:
    """One earlier turn of a conversation: what the user said and what the target really answered."""

    message: str
    reply: str


@dataclass(frozen=True, slots=True)
class TurnCall:
    """A planned turn, as an adapter needs it."""

    message: str
    role: str
    session_id: str
    stream: bool
    history: tuple[Exchange, ...] = ()
    persona: str | None = None  # the role's system prompt, when a role file gives it


@dataclass(frozen=True, slots=True)
class HttpCall:
    """The request an adapter wants sent; `stream` says whether to read the answer line by line."""

    method: str
    path: str
    body: bytes | None
    headers: Mapping[str, str]
    stream: bool

    @property
    def name(self) -> str:
        """The request's name in Locust's statistics and the sample's kind."""
        return "stream" if self.stream else "chat"


@dataclass(slots=True)
class Reply:
    """What one answer said, in the terms every SLI is computed from (times are unix seconds)."""

    token_times: list[float] = field(default_factory=list)
    output_tokens: int = 0
    text: str = ""
    error: str | None = None
    input_tokens: int | None = None
    role_version: str | None = None  # the role version that answered, when the protocol says
    trace_id: str | None = None  # the answer's trace id, when the protocol carries one

    @property
    def first_token_at(self) -> float | None:
        return self.token_times[0] if self.token_times else None

    def inter_token_latencies(self) -> list[float]:
        return [later - earlier for earlier, later in itertools.pairwise(self.token_times)]

    def arrived_all_at_once(self) -> bool:
        times = self.token_times
        return len(times) >= ALL_AT_ONCE_MIN_TOKENS and times[-1] - times[0] < ALL_AT_ONCE_SPAN_S


def usage_count(answer: object, key: str) -> int | None:
    """`usage[key]` of an answer object, when it is a count."""
    usage = answer.get("usage") if isinstance(answer, dict) else None
    value = usage.get(key) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class ReplyReader(Protocol):
    """Reads one streamed answer: raw lines (bytes, with or without their ending) in arrival order."""

    def feed(self, line: bytes, now: float) -> None: ...

    def close(self, now: float) -> Reply: ...


@runtime_checkable
class FrameReader(ReplyReader, Protocol):
    """Reads one turn's WebSocket frames; `ended` once the turn's last frame has arrived."""

    @property
    def ended(self) -> bool: ...

    @property
    def status(self) -> int:
        """200, an error frame's status, or 0 while (or when) no last frame arrived."""
        ...


class TargetAdapter(Protocol):
    """One target protocol. Built once per load process from `TargetOptions`; must be cheap per call."""

    @property
    def transport(self) -> Transport:
        """How calls travel: `http` requests, or frames on one `websocket` per session."""
        ...

    @property
    def stateless(self) -> bool:
        """True when the target keeps no conversation, so each call must carry the history."""
        ...

    def request(self, call: TurnCall) -> HttpCall: ...

    def stream_reader(self) -> ReplyReader: ...

    def read_body(self, body: bytes) -> Reply:
        """Reads a whole (not streamed) 2xx answer."""
        ...


def http_error_text(status: int, body: bytes) -> str:
    """A one-line description of a non-2xx answer, from the usual error shapes."""
    detail = ""
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        payload = body[:120].decode("utf-8", "replace").strip()
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("detail", ""))
        if isinstance(error, dict):
            detail = " ".join(str(error.get(k, "")) for k in ("code", "message") if error.get(k)) or str(
                error
            )
        else:
            detail = str(error)
    elif isinstance(payload, str):
        detail = payload
    return f"HTTP {status}: {detail}".strip().rstrip(":")[:200]


def trace_id_of(answer: object) -> str | None:
    """The answer's `trace_id`: what joins this request to the service's own span of it."""
    trace_id = answer.get("trace_id") if isinstance(answer, dict) else None
    return str(trace_id) if trace_id else None


def bearer(headers: Mapping[str, str], api_key: str | None) -> dict[str, str]:
    """The headers with `Authorization: Bearer <key>` when there is a key (given headers win)."""
    merged = dict(headers)
    if api_key and not any(name.lower() == "authorization" for name in merged):
        merged["Authorization"] = f"Bearer {api_key}"
    return merged


JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
# Compression would make the server buffer the stream; the client must see tokens as they leave.
STREAM_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "text/event-stream",
    "Accept-Encoding": "identity",
}


class JsonHttpAdapter:
    """What the HTTP adapters share: a JSON request, its headers for a JSON or a streamed answer, the key."""

    transport: Transport = "http"

    def __init__(self, headers: Mapping[str, str], api_key: str | None) -> None:
        self._json_headers = bearer({**JSON_HEADERS, **headers}, api_key)
        self._stream_headers = bearer({**STREAM_HEADERS, **headers}, api_key)

    def call(self, method: str, path: str, body: bytes | None, stream: bool) -> HttpCall:
        return HttpCall(method, path, body, self._stream_headers if stream else self._json_headers, stream)
