"""`POST /v1/chat/completions`, OpenAI-compatible, so model-server benchmark tools can drive a role.

The model name is the role name, and `GET /v1/models` lists the roles as models
(benchmark clients and rolescope's own load check ask it which models exist).
The route is stateless (the messages carry the history, as with any OpenAI
server): nothing is written to session memory.
Streaming follows OpenAI's chunk format: the finish chunk, then, when
`stream_options.include_usage` is set, a usage chunk with no choices, then
`data: [DONE]`.

What AIPerf, GuideLLM and `vllm bench serve` send and check is honoured as vLLM
does: `GET /health` answers 200 once the service is ready (GuideLLM validates
the target with it), `max_completion_tokens` wins over `max_tokens`, and vLLM's
`ignore_eos` and `min_tokens` fix the reply's length (exactly `max_tokens`
tokens, or at least `min_tokens`), so an output length chosen by the benchmark
is the output length served.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from rolescope.inference.base import ChatMessage, InferenceInput
from rolescope.roles import Role
from rolescope.service.api_models import ChatCompletionRequest, ErrorResponse, StatusResponse
from rolescope.service.chat import ChatService
from rolescope.service.context import context_of
from rolescope.service.errors import ServiceError, error_body
from rolescope.service.limits import LimitExceeded, cap_output_tokens
from rolescope.service.sse import event_stream_response, sse_event
from rolescope.service.stateless import generate, generate_stream

router = APIRouter()

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "a chat.completion object, or chat.completion.chunk events when streaming",
        "content": {"text/event-stream": {"schema": {
            "type": "object", "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
        }}},
    },
    400: {"model": ErrorResponse, "description": "the body is not valid JSON"},
    401: {"model": ErrorResponse, "description": "an API key is required and was missing or wrong"},
    404: {"model": ErrorResponse, "description": "unknown model (role)"},
    413: {"model": ErrorResponse, "description": "request body too large"},
    422: {"model": ErrorResponse, "description": "invalid request"},
    500: {"model": ErrorResponse, "description": "the backend failed to answer"},
    503: {"model": ErrorResponse, "description": "overloaded (Retry-After)"},
    504: {"model": ErrorResponse, "description": "inference timed out"},
}


def split_messages(body: ChatCompletionRequest) -> tuple[tuple[ChatMessage, ...], str]:
    """History (user and assistant turns, oldest first) and the text the role answers.

    Like an OpenAI server, any conversation the schema admits is answered: the last message is
    the one answered whatever its role (a conversation ending with an assistant or tool message
    asks for a continuation), and its text may be empty. System, developer and tool messages
    before it carry no turn of their own.
    """
    history = tuple(
        ChatMessage("user" if m.role == "user" else "assistant", m.text())
        for m in body.messages[:-1]
        if m.role in ("user", "assistant")
    )
    return history, body.messages[-1].text()


def _chunk(
    ident: str, created: int, model: str, delta: dict[str, Any], finish: str | None, usage: bool
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage:
        chunk["usage"] = None
    return chunk


async def _stream(
    service: ChatService, body: ChatCompletionRequest, ident: str, role: Role, inputs: InferenceInput
) -> AsyncIterator[bytes]:
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    created = int(time.time())
    yield sse_event(
        json.dumps(
            _chunk(ident, created, body.model, {"role": "assistant", "content": ""}, None, include_usage)
        )
    )
    try:
        async for chunk in generate_stream(service, role, inputs):
            if chunk.text:
                yield sse_event(
                    json.dumps(
                        _chunk(ident, created, body.model, {"content": chunk.text}, None, include_usage)
                    )
                )
            if chunk.usage is not None:
                yield sse_event(
                    json.dumps(
                        _chunk(ident, created, body.model, {}, chunk.finish_reason or "stop", include_usage)
                    )
                )
                if include_usage:
                    usage = _usage(chunk.usage.input_tokens, chunk.usage.output_tokens)
                    yield sse_event(
                        json.dumps(
                            {
                                "id": ident,
                                "object": "chat.completion.chunk",
                                "created": created,
                                "model": body.model,
                                "choices": [],
                                "usage": usage,
                            }
                        )
                    )
    except ServiceError as exc:
        error = error_body(exc.code, exc.message)
        error["error"]["type"] = exc.code
        yield sse_event(json.dumps(error))
    yield sse_event("[DONE]")


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def fixed_length(body: ChatCompletionRequest, max_tokens: int | None, reply_cap: int) -> int:
    """The fewest output tokens the request demands: max_tokens with `ignore_eos`, else `min_tokens`."""
    minimum = body.min_tokens or 0
    if max_tokens is not None and minimum > max_tokens:
        raise LimitExceeded(
            422,
            "invalid_request",
            f"min_tokens is {minimum}; it must not be more than max_tokens ({max_tokens})",
        )
    if body.ignore_eos:
        # Without a length, vLLM runs to the context's end; the reply cap is that end here.
        return max_tokens if max_tokens is not None else reply_cap
    return minimum


@router.post("/v1/chat/completions", responses=_RESPONSES, tags=["openai-compatible"])
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    """OpenAI-compatible chat completions; `model` is a role name (see `GET /v1/roles`)."""
    context = context_of(request)
    service = context.chat_service
    # Stateless: the caller's `user` (when sent) keeps one caller on one version, else each request splits.
    name = service.role(body.model).name
    role = service.route(name, body.model, body.user or secrets.token_urlsafe(16), request.headers)
    history, message = split_messages(body)
    max_tokens = body.max_completion_tokens or body.max_tokens
    inputs = service.inference_input(role, history, message, max_tokens)
    minimum = fixed_length(body, max_tokens, service.limits.max_output_tokens)
    if minimum:
        cap_output_tokens(minimum, service.limits)
        inputs = dataclasses.replace(inputs, min_output_tokens=minimum, ignore_eos=body.ignore_eos)
    ident = f"chatcmpl-{secrets.token_hex(12)}"
    if body.stream:
        return event_stream_response(_stream(service, body, ident, role, inputs), context.drain)
    result = await generate(service, role, inputs)
    return JSONResponse(
        {
            "id": ident,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": result.text},
                    "logprobs": None,
                    "finish_reason": result.finish_reason,
                }
            ],
            "usage": _usage(result.usage.input_tokens, result.usage.output_tokens),
        }
    )


@router.get(
    "/health",
    tags=["openai-compatible"],
    responses={503: {"model": StatusResponse, "description": "not ready"}},
)
async def health(request: Request) -> Response:
    """vLLM's health route, which GuideLLM and other benchmark clients check first: 200 once ready."""
    service = context_of(request).chat_service
    ready = await service.store.inner.ping()
    return JSONResponse(
        StatusResponse(status="ok" if ready else "unavailable").model_dump(),
        status_code=200 if ready else 503,
        headers=None if ready else {"Retry-After": "1"},
    )


@router.get("/v1/models", tags=["openai-compatible"])
async def list_models(request: Request) -> JSONResponse:
    """OpenAI-compatible model list: one model per role served."""
    roles = context_of(request).chat_service.roles
    return JSONResponse(
        {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "rolescope"} for name in roles
            ],
        }
    )
