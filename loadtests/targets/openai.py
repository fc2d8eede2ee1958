"""OpenAI-compatible `POST /v1/chat/completions`, streamed or not, as AIPerf and GuideLLM speak it.

The first token is the first non-empty `content` delta: role-only, empty and
reasoning deltas come earlier on many servers and are not yet the answer.
Output tokens come from `usage` (asked for with `stream_options.include_usage`)
and fall back to the number of content deltas when a server sends none. A
stream is complete only with a `finish_reason` and `data: [DONE]`; one
without either was cut off, and an error chunk is a failure whatever the
HTTP status said.
"""

from __future__ import annotations

import json
from typing import Any

from rolescope.loadtests.targets.base import (
    HttpCall,
    JsonHttpAdapter,
    Reply,
    TargetOptions,
    TurnCall,
)
from rolescope.loadtests.targets.history import chat_messages
from rolescope.loadtests.targets.sse_events import SseFramer

COMPLETIONS_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
FAILED_FINISH = frozenset({"error", "abort"})


def _error_detail(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error.get("type") or error)[:200]
    return str(error)[:200]


class OpenAIStreamReader:
    __slots__ = ("_done", "_finish", "_framer", "_parts", "_reply")

    def __init__(self) -> None:
        self._framer = SseFramer()
        self._reply = Reply()
        self._parts: list[str] = []
        self._finish: str | None = None
        self._done = False

    def feed(self, line: bytes, now: float) -> None:
        event = self._framer.feed(line)
        if event is not None:
            self._chunk(event.data, now)

    def _chunk(self, data: str, now: float) -> None:
        reply = self._reply
        if data == "[DONE]":
            self._done = True
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            reply.error = reply.error or f"unreadable chunk: {data[:80]!r}"
            return
        if not isinstance(chunk, dict):
            return
        if chunk.get("error") is not None:
            reply.error = reply.error or f"error chunk: {_error_detail(chunk['error'])}"
            return
        choices = chunk.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            choice = choices[0]
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str) and content:
                reply.token_times.append(now)
                self._parts.append(content)
            if choice.get("finish_reason"):
                self._finish = str(choice["finish_reason"])
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            if isinstance(usage.get("completion_tokens"), int):
                reply.output_tokens = usage["completion_tokens"]
            if isinstance(usage.get("prompt_tokens"), int):
                reply.input_tokens = usage["prompt_tokens"]

    def close(self, now: float) -> Reply:
        last = self._framer.close()
        if last is not None:
            self._chunk(last.data, now)
        reply = self._reply
        reply.text = "".join(self._parts)
        if not reply.output_tokens:
            reply.output_tokens = len(reply.token_times)
        if reply.error is None:
            if self._finish in FAILED_FINISH:
                reply.error = f"finish_reason {self._finish}"
            elif not reply.token_times:
                reply.error = "stream ended without a content token"
            elif self._finish is None:
                reply.error = "stream ended without a finish_reason (truncated)"
            elif not self._done:
                reply.error = "stream ended without data: [DONE] (truncated)"
        return reply


class OpenAIAdapter(JsonHttpAdapter):
    stateless = True

    def __init__(self, options: TargetOptions, api_key: str | None) -> None:
        super().__init__(options.headers, api_key)
        self._model = options.model
        self._extra: dict[str, Any] = {}
        if options.max_tokens is not None:
            # Servers differ in which name they read (max_tokens is deprecated but still the only one
            # some accept); sending both is what the benchmark peers do.
            self._extra["max_tokens"] = options.max_tokens
            self._extra["max_completion_tokens"] = options.max_tokens
        if options.ignore_eos:
            self._extra["ignore_eos"] = True

    def model_for(self, role: str) -> str:
        """The model asked for: `--model`, or the role's name (rolescope serves each role as a model)."""
        return self._model or role

    def request(self, call: TurnCall) -> HttpCall:
        body: dict[str, Any] = {
            "model": self.model_for(call.role),
            "messages": chat_messages(call),
            "stream": call.stream,
            **self._extra,
        }
        if call.stream:
            body["stream_options"] = {"include_usage": True}
        return self.call("POST", COMPLETIONS_PATH, json.dumps(body).encode(), call.stream)

    def stream_reader(self) -> OpenAIStreamReader:
        return OpenAIStreamReader()

    def read_body(self, body: bytes) -> Reply:
        try:
            answer = json.loads(body)
        except ValueError:
            return Reply(error=f"unreadable answer: {body[:80]!r}")
        if not isinstance(answer, dict):
            return Reply(error="unreadable answer: not a JSON object")
        if answer.get("error") is not None:
            return Reply(error=f"error: {_error_detail(answer['error'])}")
        try:
            choice = answer["choices"][0]
            text = str(choice["message"].get("content") or "")
        except (KeyError, IndexError, TypeError, AttributeError):
            return Reply(error="unreadable answer: no choices[0].message")
        if choice.get("finish_reason") in FAILED_FINISH:
            return Reply(text=text, error=f"finish_reason {choice['finish_reason']}")
        usage: dict[str, Any] = answer["usage"] if isinstance(answer.get("usage"), dict) else {}
        tokens = usage.get("completion_tokens")
        prompt = usage.get("prompt_tokens")
        return Reply(
            # Without usage, whitespace-separated words are the estimate (documented as such).
            output_tokens=tokens if isinstance(tokens, int) else len(text.split()),
            text=text,
            input_tokens=prompt if isinstance(prompt, int) else None,
        )
