"""A backend that asks an OpenAI-compatible server (vLLM, Ollama, another rolescope) over HTTP.

Uses `/v1/chat/completions`, streaming with `stream_options.include_usage`, and
passes on `ignore_eos` and `min_tokens` when the client's request carried them. The
role's `timeout_ms` bounds the whole request; when it runs out the backend raises
`InferenceTimeoutError` — it never falls back to a canned answer. Any other
upstream failure (status, connection, malformed reply) is an `InferenceError`.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx

from rolescope.client_tls import ClientTls
from rolescope.event_stream import EventStreamDecoder
from rolescope.inference.base import (
    InferenceError,
    InferenceInput,
    InferenceResult,
    InferenceTimeoutError,
    TokenChunk,
    Usage,
)

PROVIDER_NAME = "openai"


class OpenAIHttpBackend:
    provider_name = PROVIDER_NAME

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        tls: ClientTls | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # Pooled connections, no global timeout: each call sets its own deadline from timeout_ms.
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            transport=transport,
            timeout=None,
            limits=httpx.Limits(max_connections=200),
            # The role's CA and client certificate (mutual TLS to the model server); else the system CAs.
            verify=tls.ssl_context() if tls is not None and tls.configured else True,
        )
        self._base_url = base_url

    @classmethod
    def from_env(
        cls, base_url: str, api_key_env: str | None, tls: ClientTls | None = None
    ) -> OpenAIHttpBackend:
        return cls(base_url, api_key=os.environ.get(api_key_env) if api_key_env else None, tls=tls)

    def _payload(self, model_id: str, inputs: InferenceInput, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": model_id,
            "messages": [{"role": m.role, "content": m.content} for m in inputs.as_messages()],
            "max_tokens": inputs.constraints.max_tokens,
            "temperature": inputs.temperature,
            "stream": stream,
        }
        if stream:
            payload["stream_options"] = {"include_usage": True}
        # A client fixing the output length (a benchmark) must get that length from the model server too:
        # vLLM takes both fields and refuses min_tokens above max_tokens, so max_tokens makes room.
        if inputs.ignore_eos:
            payload["ignore_eos"] = True
        elif inputs.min_output_tokens:
            payload["min_tokens"] = inputs.min_output_tokens
        if inputs.min_output_tokens:
            payload["max_tokens"] = max(inputs.constraints.max_tokens, inputs.min_output_tokens)
        return payload

    def _timeout(self, model_id: str, timeout_ms: int) -> InferenceTimeoutError:
        return InferenceTimeoutError(f"{model_id} at {self._base_url} did not answer within {timeout_ms} ms")

    async def infer(self, model_id: str, inputs: InferenceInput, timeout_ms: int) -> InferenceResult:
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                response = await self._client.post(
                    "/v1/chat/completions", json=self._payload(model_id, inputs, stream=False)
                )
        except TimeoutError as exc:
            raise self._timeout(model_id, timeout_ms) from exc
        except httpx.HTTPError as exc:
            raise InferenceError(f"{model_id} at {self._base_url}: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise InferenceError(f"{model_id} at {self._base_url} answered HTTP {response.status_code}")
        try:
            body = response.json()
            choice = body["choices"][0]
            usage = body.get("usage") or {}
            return InferenceResult(
                text=choice["message"]["content"] or "",
                usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
                model=str(body.get("model", model_id)),
                finish_reason=str(choice.get("finish_reason") or "stop"),
            )
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise InferenceError(f"{model_id} at {self._base_url} sent a malformed completion") from exc

    async def infer_stream(
        self, model_id: str, inputs: InferenceInput, timeout_ms: int
    ) -> AsyncIterator[TokenChunk]:
        # The deadline guards each await separately: a timeout scope must never span a `yield`,
        # or it would cancel the consumer's code instead of this generator.
        deadline = asyncio.get_running_loop().time() + timeout_ms / 1000
        usage: Usage | None = None
        finish: str | None = None
        request = self._client.build_request(
            "POST", "/v1/chat/completions", json=self._payload(model_id, inputs, stream=True)
        )
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._client.send(request, stream=True)
        except TimeoutError as exc:
            raise self._timeout(model_id, timeout_ms) from exc
        except httpx.HTTPError as exc:
            raise InferenceError(f"{model_id} at {self._base_url}: {type(exc).__name__}") from exc
        try:
            if response.status_code != 200:
                raise InferenceError(f"{model_id} at {self._base_url} answered HTTP {response.status_code}")
            chunks = response.aiter_bytes()
            decoder = EventStreamDecoder()
            done = False
            while not done:
                try:
                    async with asyncio.timeout_at(deadline):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                except TimeoutError as exc:
                    raise self._timeout(model_id, timeout_ms) from exc
                except httpx.HTTPError as exc:
                    raise InferenceError(f"{model_id} at {self._base_url}: {type(exc).__name__}") from exc
                pieces: list[str] = []
                for event in decoder.feed(chunk):
                    if event.data == "[DONE]":
                        done = True
                        break
                    if event.event == "error":
                        raise InferenceError(f"{model_id} at {self._base_url} failed mid-stream")
                    try:
                        body = json.loads(event.data)
                        if "error" in body:
                            raise InferenceError(f"{model_id} at {self._base_url} failed mid-stream")
                        if body.get("usage"):
                            usage = Usage(
                                int(body["usage"].get("prompt_tokens", 0)),
                                int(body["usage"].get("completion_tokens", 0)),
                            )
                        for choice in body.get("choices") or ():
                            finish = choice.get("finish_reason") or finish
                            pieces.append((choice.get("delta") or {}).get("content") or "")
                    except (ValueError, KeyError, TypeError, AttributeError) as exc:
                        raise InferenceError(
                            f"{model_id} at {self._base_url} sent a malformed stream chunk"
                        ) from exc
                for text in pieces:
                    if text:
                        yield TokenChunk(text)
        finally:
            await response.aclose()
        yield TokenChunk("", usage or Usage(0, 0), finish or "stop")

    async def aclose(self) -> None:
        await self._client.aclose()
