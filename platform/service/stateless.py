"""Generation without session memory, for the OpenAI-compatible route: the caller sends the history.

Spans and observer hooks are the same as for the native chat route, so benchmark
tools pointed at `/v1/chat/completions` show up in the same dashboards.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from opentelemetry import trace

from rolescope.inference.base import InferenceError, InferenceInput, InferenceResult, TokenChunk
from rolescope.roles import Role
from rolescope.service.chat import ChatService, role_attributes, trace_id_of

tracer = trace.get_tracer("rolescope")


async def generate(service: ChatService, role: Role, inputs: InferenceInput) -> InferenceResult:
    backend = service.backend(role)
    with tracer.start_as_current_span("chat", attributes=role_attributes(role)) as span:
        trace_id = trace_id_of(span)
        inference_span = service.inference_span(role, span)
        started = time.perf_counter()
        try:
            result = await backend.infer(role.inference.model, inputs, role.inference.timeout_ms)
        except InferenceError as exc:
            raise service.fail_inference(inference_span, exc, role) from exc
        except BaseException:
            inference_span.end()
            raise
        duration = time.perf_counter() - started
        if result.ttft_s is not None:
            service.first_token(span, role, backend.provider_name, result.ttft_s, trace_id)
        _done(
            service,
            role,
            inference_span,
            duration,
            result.ttft_s,
            result.usage.input_tokens,
            result.usage.output_tokens,
            trace_id,
        )
        return result


def _done(
    service: ChatService,
    role: Role,
    span: trace.Span,
    duration: float,
    ttft: float | None,
    input_tokens: int,
    output_tokens: int,
    trace_id: str,
) -> None:
    span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
    span.end()  # ended here, not before: an ended span drops the usage attributes
    tpot = (duration - ttft) / (output_tokens - 1) if ttft is not None and output_tokens > 1 else None
    service.observer.generation_done(
        role.name,
        role.inference.model,
        service.backend(role).provider_name,
        duration,
        tpot,
        input_tokens,
        output_tokens,
        trace_id,
        role_version=role.version,
    )


async def generate_stream(
    service: ChatService, role: Role, inputs: InferenceInput
) -> AsyncIterator[TokenChunk]:
    """Chunks as the backend yields them; a failure raises a `ServiceError` after the last good chunk."""
    backend = service.backend(role)
    span = tracer.start_span("chat", attributes={**role_attributes(role), "rolescope.stream": True})
    trace_id = trace_id_of(span)
    inference_span = service.inference_span(role, span)
    started, ttft = time.perf_counter(), None
    input_tokens = output_tokens = 0
    try:
        try:
            async for chunk in backend.infer_stream(role.inference.model, inputs, role.inference.timeout_ms):
                if chunk.text and ttft is None:
                    ttft = time.perf_counter() - started
                    service.first_token(span, role, backend.provider_name, ttft, trace_id)
                if chunk.usage is not None:
                    input_tokens, output_tokens = chunk.usage.input_tokens, chunk.usage.output_tokens
                yield chunk
        except InferenceError as exc:
            raise service.fail_inference(inference_span, exc, role) from exc
        except BaseException:
            inference_span.end()
            raise
        _done(
            service,
            role,
            inference_span,
            time.perf_counter() - started,
            ttft,
            input_tokens,
            output_tokens,
            trace_id,
        )
    finally:
        span.end()
