"""`POST /v1/chat/completions`, OpenAI-compatible, so model-server benchmark tools can drive a role.

The model name is the role name, and `GET /v1/models` lists the roles as models
(benchmark clients and rolescope's own load check ask it which models exist).
The route is stateless (the messages carry the history, as with any OpenAI
server): nothing is written to session memory.
Streaming follows OpenAI's chunk format, ends with `data: [DONE]`, and sends a
usage chunk first when `stream_options.include_usage` is set.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sse_starlette import ServerSentEvent

from rolescope.inference.base import ChatMessage, InferenceInput
from rolescope.roles import Role
from rolescope.service.api_models import ChatCompletionRequest, ErrorResponse
from rolescope.service.chat import ChatService
from rolescope.service.context import context_of
from rolescope.service.errors import ServiceError, error_body
from rolescope.service.sse import event_stream_response
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
) -> AsyncIterator[ServerSentEvent]:
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    created = int(time.time())
    yield ServerSentEvent(
        json.dumps(
            _chunk(ident, created, body.model, {"role": "assistant", "content": ""}, None, include_usage)
        )
    )
    try:
        async for chunk in generate_stream(service, role, inputs):
            if chunk.text:
                yield ServerSentEvent(
                    json.dumps(
                        _chunk(ident, created, body.model, {"content": chunk.text}, None, include_usage)
                    )
                )
            if chunk.usage is not None:
                yield ServerSentEvent(
                    json.dumps(
                        _chunk(ident, created, body.model, {}, chunk.finish_reason or "stop", include_usage)
                    )
                )
                if include_usage:
                    usage = _usage(chunk.usage.input_tokens, chunk.usage.output_tokens)
                    yield ServerSentEvent(
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
        yield ServerSentEvent(json.dumps(error))
    yield ServerSentEvent("[DONE]")


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


@router.post("/v1/chat/completions", responses=_RESPONSES, tags=["openai-compatible"])
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    """OpenAI-compatible chat completions; `model` is a role name (see `GET /v1/roles`)."""
    context = context_of(request)
    service = context.chat_service
    # Stateless: the caller's `user` (when sent) keeps one caller on one version, else each request splits.
    name = service.role(body.model).name
    role = service.route(name, body.model, body.user or secrets.token_urlsafe(16), request.headers)
    history, message = split_messages(body)
    inputs = service.inference_input(role, history, message, body.max_completion_tokens or body.max_tokens)
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
