"""The HTTP API's request and response bodies (pydantic v2); the OpenAPI document is built from these."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{8,128}$"


class ChatRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"message": "Who stole the necklace?", "role": "sherlock"}]},
    )

    message: str = Field(min_length=1, description="the user's message")
    session_id: str | None = Field(
        default=None,
        pattern=SESSION_ID_PATTERN,
        description="continue a session; a new one is created when absent",
    )
    role: str | None = Field(
        default=None,
        description="role name, or `name@version` to pin a version; the first loaded role when absent",
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


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


class RoleVersionInfo(BaseModel):
    version: str
    model: str
    backend: str
    default: bool = Field(description="answers requests that name the role without a version")


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
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if self.content is None:
            return ""
        return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    # Benchmark clients send sampling fields (top_p, ignore_eos, ...) the simulator does not use.
    model_config = ConfigDict(extra="allow")

    model: str = Field(description="the role name")
    messages: list[OpenAIMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    user: str | None = None
