"""The HTTP API's request and response bodies (pydantic v2); the OpenAPI document is built from these."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{8,128}$"
# "Has a character that is not whitespace", whitespace being exactly what `str.isspace()` (and so
# `str.strip()`) calls whitespace, U+001C..U+001F included. Spelled out rather than `\S` because the
# OpenAPI document's readers (ECMA-262), pydantic (Rust regex) and Python disagree on what `\s` holds.
NON_BLANK_PATTERN = (
    r"[^\t-\r\x1c- \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
)




def _integral_float_to_int(value: object) -> object:
    # JSON Schema counts 3.0 as an integer; strict pydantic would refuse it, so it becomes 3 first.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# A positive integer as JSON Schema means it: 3 and 3.0, but not true, "3" or 3.5.
PositiveJsonInt = Annotated[int, Field(ge=1), BeforeValidator(_integral_float_to_int)]
NonNegativeJsonInt = Annotated[int, Field(ge=0), BeforeValidator(_integral_float_to_int)]


# Request models are strict: pydantic's lax mode would take `"stream": 1` or `"temperature": false`,
# which the OpenAPI document (boolean, number) says are invalid.
class ChatRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"message": "Who stole the necklace?", "role": "sherlock"}]},
    )

    message: str = Field(
        min_length=1, pattern=NON_BLANK_PATTERN, description="the user's message (not only whitespace)"
    )
    session_id: str | None = Field(
        default=None,
        pattern=SESSION_ID_PATTERN,
        description="continue a session; a new one is created when absent",
    )
    role: str | None = Field(
        default=None,
        description=(
            "role name, or `name@version` to pin a version (also the `X-Role-Version` header); "
            "the first loaded role when absent"
        ),
    )
    stream: bool = Field(default=False, description="answer with server-sent events")


class UsageBody(BaseModel):
    input_tokens: int
    output_tokens: int


class ChatResponse(BaseModel):
    role: str
    content: str
    timestamp: str = Field(description="ISO 8601, UTC")
    confidence_score: float = Field(ge=0, le=1)
    session_id: str
    trace_id: str = Field(description="32 hex characters; the OpenTelemetry trace id when tracing is on")
    usage: UsageBody
    role_version: str = Field(default="", description="the version of the role that answered")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


class RoleVersionInfo(BaseModel):
    version: str
    model: str
    backend: str
    default: bool = Field(
        description="the primary version: answers unpinned requests when the role has no release policy"
    )
    weight: float | None = Field(
        default=None,
        description="percent of sessions the release policy sends here; null without a release policy",
    )


class RoleInfo(BaseModel):
    name: str
    version: str = Field(description="the default version")
    display_name: str
    description: str
    model: str
    backend: str
    greeting: str | None
    versions: list[RoleVersionInfo] = Field(
        description="every loaded version, lowest first; pin one with `name@version`"
    )


class RolesResponse(BaseModel):
    roles: list[RoleInfo]


class TurnBody(BaseModel):
    speaker: Literal["user", "assistant"]
    content: str
    timestamp: str


class SessionResponse(BaseModel):
    session_id: str
    role: str
    created_at: str
    updated_at: str
    turns: list[TurnBody]


class StatusResponse(BaseModel):
    status: str
    detail: dict[str, Any] = Field(default_factory=dict)


# --- OpenAI-compatible /v1/chat/completions ------------------------------------------------


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if self.content is None:
            return ""
        return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    # Benchmark clients send sampling fields (top_p, stop, ...) the simulator does not use.
    model_config = ConfigDict(extra="allow", strict=True)

    model: str = Field(description="the role name")
    messages: list[OpenAIMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: PositiveJsonInt | None = None
    max_completion_tokens: PositiveJsonInt | None = None
    # vLLM's sampling extensions that benchmark clients send to fix the output length.
    ignore_eos: bool = Field(default=False, description="generate exactly max_tokens tokens")
    min_tokens: NonNegativeJsonInt | None = Field(default=None, description="at least this many tokens")
    temperature: float | None = Field(default=None, ge=0, le=2)
    user: str | None = None
