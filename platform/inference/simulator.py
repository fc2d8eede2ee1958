"""The default backend: a deterministic, persona-voiced simulator with a seeded timing model.

Same role version, history, message and seed → same text, same token count and
same delays. Streams really arrive token by token (the event loop sleeps between
tokens), and the planted faults exist so load tests can catch regressions on
purpose: each lives in a distinctly named function that a profiler or an
allocation tracker can rank.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from rolescope.inference.base import (
    InferenceError,
    InferenceInput,
    InferenceResult,
    InferenceTimeoutError,
    TokenChunk,
    Usage,
)
from rolescope.inference.persona_text import compose_reply
from rolescope.inference.tokens import count_tokens, prompt_tokens, tokenize
from rolescope.settings import FaultSettings

PROVIDER_NAME = "rolescope.simulator"


def _planted_cpu_work(microseconds: float) -> int:
    """Busy CPU work per token (fault `cpu_per_token_us`): shows up by name in py-spy profiles."""
    end = time.perf_counter() + microseconds / 1_000_000
    accumulator = 0
    while time.perf_counter() < end:
        accumulator = (accumulator * 31 + 7) % 1_000_003
    return accumulator


class _PlantedObject:
    """One heap allocation each: no free list or small-object cache can absorb it."""

    __slots__ = ()


def _planted_allocations(count: int) -> list[_PlantedObject]:
    """`count` small objects per request (fault `extra_allocations`), held until the request ends.

    Tuples or ints would be served from CPython's free lists and caches some of the
    time, so the count a profiler sees would depend on what ran before; these do not.
    """
    return [_PlantedObject() for _ in range(count)]


def request_seed(inputs: InferenceInput) -> int:
    """A seed from everything that defines the answer; nothing time- or process-dependent."""
    digest = hashlib.sha256()
    for part in (inputs.role_name, inputs.role_version, str(inputs.timing.seed), inputs.message):
        digest.update(part.encode())
        digest.update(b"\x00")
    for message in inputs.history:
        digest.update(f"{message.role}\x01{message.content}\x00".encode())
    return int.from_bytes(digest.digest()[:8], "big")


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything one answer will be: its tokens and the delay before each of them."""

    text: str
    tokens: tuple[str, ...]
    delays_s: tuple[float, ...]  # delays_s[0] is the time to first token
    input_tokens: int
    confidence: float

    @property
    def output_tokens(self) -> int:
        # `tokens` is `tokenize(text)`: counting its words is count_tokens(text) without a second pass.
        return sum(1 for token in self.tokens if not token.isspace())


def lengthen(text: str, inputs: InferenceInput, rng: random.Random) -> str:
    """The reply carried on, in the same voice, to exactly `min_output_tokens` tokens.

    The role's length limits would stop it short: a client asking for a fixed output
    length (`ignore_eos`, `min_tokens`) gets that length, as from a model that never
    emits its end-of-sequence token.
    """
    wanted = inputs.min_output_tokens
    if count_tokens(text) >= wanted:
        return text
    unbounded = inputs.constraints.model_copy(update={"max_tokens": 32_000, "max_length": 100_000})
    parts = [text]
    total = count_tokens(text)
    while total < wanted:
        more = compose_reply(inputs.persona, unbounded, inputs.history, inputs.message, rng)
        parts.append(more)
        total += count_tokens(more)
    tokens = [token for token in tokenize(" ".join(p for p in parts if p)) if not token.isspace()]
    return "".join(tokens[:wanted]).strip()


def plan_answer(inputs: InferenceInput) -> Plan:
    rng = random.Random(request_seed(inputs))
    text = compose_reply(inputs.persona, inputs.constraints, inputs.history, inputs.message, rng)
    if inputs.min_output_tokens:
        text = lengthen(text, inputs, rng)
    tokens = tuple(tokenize(text))
    timing = inputs.timing

    def spread(base: float) -> float:
        return max(0.0, base * (1 + timing.jitter * rng.uniform(-1, 1)))

    per_token = 1.0 / timing.tokens_per_second
    delays = [spread(timing.ttft_ms / 1000)] + [spread(per_token) for _ in tokens[1:]]
    input_tokens = (
        prompt_tokens(inputs.system_prompt)
        + sum(count_tokens(m.content) for m in inputs.history)
        + count_tokens(inputs.message)
    )
    return Plan(text, tokens, tuple(delays), input_tokens, round(0.6 + 0.35 * rng.random(), 3))


class SimulatorBackend:
    """The simulator as an `InferenceBackend`; one instance per service process."""

    provider_name = PROVIDER_NAME

    def __init__(
        self, faults: FaultSettings | None = None, *, fault_seed: int = 0x5EED, delays: bool = True
    ) -> None:
        self._faults = faults or FaultSettings()
        # Off, every planned delay is a bare event-loop yield: streams still interleave token by
        # token, but no timer is armed, so how many loop iterations a request takes no longer
        # depends on the wall clock (the memory replay counts the loop's allocations too).
        self._delays = delays
        # One seeded stream of fault decisions per process: the share of failed requests
        # converges on error_rate and a rerun with the same traffic fails the same requests.
        self._fault_rng = random.Random(fault_seed)

    def _should_fail(self) -> bool:
        return self._faults.error_rate > 0 and self._fault_rng.random() < self._faults.error_rate

    async def infer(self, model_id: str, inputs: InferenceInput, timeout_ms: int) -> InferenceResult:
        plan = plan_answer(inputs)
        ballast = (
            _planted_allocations(self._faults.extra_allocations) if self._faults.extra_allocations else None
        )
        fail = self._should_fail()
        total = self._faults.added_latency_ms / 1000 + (sum(plan.delays_s) if self._delays else 0.0)
        budget = timeout_ms / 1000
        if total > budget:
            await asyncio.sleep(budget)
            raise InferenceTimeoutError(f"{model_id} did not answer within {timeout_ms} ms")
        if self._faults.cpu_per_token_us:
            for _ in plan.tokens:
                _planted_cpu_work(self._faults.cpu_per_token_us)
        await asyncio.sleep(total)
        del ballast
        if fail:
            raise InferenceError(f"{model_id} failed (planted fault, error_rate={self._faults.error_rate})")
        usage = Usage(plan.input_tokens, plan.output_tokens)
        ttft = self._faults.added_latency_ms / 1000 + (plan.delays_s[0] if plan.delays_s else 0.0)
        return InferenceResult(plan.text, usage, model_id, "stop", plan.confidence, ttft)

    async def infer_stream(
        self, model_id: str, inputs: InferenceInput, timeout_ms: int
    ) -> AsyncIterator[TokenChunk]:
        plan = plan_answer(inputs)
        ballast = (
            _planted_allocations(self._faults.extra_allocations) if self._faults.extra_allocations else None
        )
        fail_at = len(plan.tokens) // 2 if self._should_fail() else -1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        if self._faults.added_latency_ms:
            await asyncio.sleep(self._faults.added_latency_ms / 1000)
        delays = plan.delays_s if self._delays else (0.0,) * len(plan.tokens)
        for index, (token, delay) in enumerate(zip(plan.tokens, delays, strict=True)):
            if loop.time() + delay > deadline:
                await asyncio.sleep(max(0.0, deadline - loop.time()))
                raise InferenceTimeoutError(f"{model_id} did not finish within {timeout_ms} ms")
            await asyncio.sleep(delay)
            if self._faults.cpu_per_token_us:
                _planted_cpu_work(self._faults.cpu_per_token_us)
            if index == fail_at:
                raise InferenceError(f"{model_id} failed mid-stream (planted fault)")
            yield TokenChunk(token)
        del ballast
        yield TokenChunk("", Usage(plan.input_tokens, plan.output_tokens), "stop", plan.confidence)

    async def aclose(self) -> None:
        return None
