"""The inference contract every backend keeps: `infer` for a whole answer, `infer_stream` token by token.

A stream yields `TokenChunk`s; the last one carries the usage (and has empty text
when the backend reports usage separately), like OpenAI's `include_usage` chunk.
A backend that runs out of time raises `InferenceTimeoutError` — never a silent
fallback to a shorter or canned answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from rolescope.roles import Persona, ResponseConstraints, SimulatorTiming


class InferenceError(RuntimeError):
    """The backend failed to produce an answer (bad upstream status, malformed reply, planted fault)."""


class InferenceTimeoutError(InferenceError):
    """The backend did not finish within the request's `timeout_ms`."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class InferenceInput:
    """What a backend gets: the conversation so far plus the role facts a simulator needs.

    `history` holds earlier turns (oldest first); `message` is the new user message.
    `persona` is the structured persona, or the plain-text one (then it equals `system_prompt`).
    """

    role_name: str
    role_version: str
    system_prompt: str
    history: tuple[ChatMessage, ...]
    message: str
    persona: Persona | str
    constraints: ResponseConstraints
    timing: SimulatorTiming = field(default_factory=SimulatorTiming)
    temperature: float = 0.7
    # At least this many output tokens, past the role's own length (vLLM's `min_tokens`; with
    # `ignore_eos` it equals max_tokens): benchmark clients fix the output length this way.
    min_output_tokens: int = 0
    ignore_eos: bool = False  # the client asked for `ignore_eos` (an upstream model server is asked the same)

    def as_messages(self) -> list[ChatMessage]:
        return [ChatMessage("system", self.system_prompt), *self.history, ChatMessage("user", self.message)]


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class TokenChunk:
    text: str
    usage: Usage | None = None  # set on the final chunk only
    finish_reason: str | None = None
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class InferenceResult:
    text: str
    usage: Usage
    model: str
    finish_reason: str = "stop"
    confidence: float | None = None
    ttft_s: float | None = None  # when the backend knows when its first token was ready


@runtime_checkable
class InferenceBackend(Protocol):
    provider_name: str  # the gen_ai.provider.name of the spans, e.g. "rolescope.simulator", "openai"

    async def infer(self, model_id: str, inputs: InferenceInput, timeout_ms: int) -> InferenceResult: ...

    def infer_stream(
        self, model_id: str, inputs: InferenceInput, timeout_ms: int
    ) -> AsyncIterator[TokenChunk]:
        """An async iterator of chunks; the last one carries `usage`."""
        ...

    async def aclose(self) -> None: ...
