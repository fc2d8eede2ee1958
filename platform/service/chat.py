"""The business layer: one chat exchange from role lookup to stored answer, streamed or not.

It talks to inference through `InferenceBackend` and to memory through
`SessionStore`; it knows neither SQL nor HTTP. Every failure becomes a
`ServiceError` with a status, so the edge has nothing to guess. Spans are
started with explicit parents rather than attached to the context, because a
streaming answer is an async generator that the server resumes from other
frames, where attach/detach pairs would not match.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from rolescope.inference.base import (
    ChatMessage,
    InferenceBackend,
    InferenceError,
    InferenceInput,
    InferenceTimeoutError,
    Usage,
)
from rolescope.role_registry import VERSION_SEPARATOR, RoleRegistry, UnknownRoleReference, as_registry
from rolescope.roles import Role
from rolescope.service.errors import (
    InferenceFailed,
    InferenceTimedOut,
    InvalidInput,
    ServiceError,
    SessionConflict,
    SessionNotFound,
    UnknownRole,
)
from rolescope.service.idempotency import ChatIdempotency
from rolescope.service.limits import Limits, check_turns
from rolescope.service.observer import ChatObserver, ExchangeSummary, NullObserver
from rolescope.service.role_catalog import RoleCatalog
from rolescope.service.routing import routed_reference, session_route
from rolescope.service.store_calls import TimedStore
from rolescope.storage.base import ExchangeRecord, MemoryPolicyView, SessionRecord, SessionStore, Turn

tracer = trace.get_tracer("rolescope")

# The span attribute carrying the answering role version (the GenAI conventions' agent version).
ROLE_VERSION_ATTRIBUTE = "gen_ai.agent.version"
# The name vLLM gives the same figure on its spans, so one reader joins either service's spans.
TTFT_ATTRIBUTE = "gen_ai.latency.time_to_first_token"
# Turns whose decayed weight falls below this are left out of the prompt.
_PROMPT_WEIGHT_FLOOR = 0.05
# Reported when a backend gives no confidence of its own (an OpenAI-compatible server without logprobs).
DEFAULT_CONFIDENCE = 0.8


def iso_utc(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def trace_id_of(span: Span) -> str:
    """The span's trace id as 32 hex characters, or a fresh random one when there is no trace context.

    An unsampled request still has a valid trace id (the server span's, which log lines carry too).
    """
    context = span.get_span_context()
    if context.is_valid:
        return format(context.trace_id, "032x")
    return secrets.token_hex(16)


def prompt_history(turns: list[Turn], decay: float) -> tuple[ChatMessage, ...]:
    """The newest turns whose weight decay**age stays above the floor, oldest first."""
    keep = len(turns) if decay >= 1 else math.ceil(math.log(_PROMPT_WEIGHT_FLOOR) / math.log(decay))
    return tuple(ChatMessage(t.speaker, t.content) for t in turns[-keep:]) if keep else ()


def role_attributes(role: Role) -> dict[str, str]:
    """Span attributes naming the role and the version that answered."""
    return {"rolescope.role": role.name, ROLE_VERSION_ATTRIBUTE: role.version}


def policy_view(role: Role) -> MemoryPolicyView:
    return MemoryPolicyView(role.memory_policy.max_turns, role.memory_policy.ttl_seconds)


@dataclass(frozen=True, slots=True)
class ChatCommand:
    message: str
    role: str | None = None
    session_id: str | None = None
    owner: str | None = None
    client_id: str | None = None
    stream: bool = False
    arrival_unix: float = field(default_factory=time.time)
    idempotency_key: str | None = None
    # Request headers by lowercase name: a version pin (`X-Role-Version`) and the release rules read them.
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChatReply:
    role: str
    content: str
    timestamp: str
    confidence_score: float
    session_id: str
    trace_id: str
    usage: Usage
    role_version: str = ""  # the version that answered; empty only in answers stored before versions

    def as_dict(self) -> dict[str, Any]:
        # Spelled out: dataclasses.asdict deep-copies field by field, a measurable share of an exchange.
        return {
            "role": self.role,
            "content": self.content,
            "timestamp": self.timestamp,
            "confidence_score": self.confidence_score,
            "session_id": self.session_id,
            "trace_id": self.trace_id,
            "usage": {"input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens},
            "role_version": self.role_version,
        }


@dataclass(frozen=True, slots=True)
class TokenEvent:
    text: str
    index: int


@dataclass(frozen=True, slots=True)
class DoneEvent:
    reply: ChatReply


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    error: ServiceError


StreamEvent = TokenEvent | DoneEvent | ErrorEvent


@dataclass(slots=True)
class PreparedChat:
    """A validated request, ready for inference: role resolved, session loaded."""

    command: ChatCommand
    role: Role
    session_id: str
    inputs: InferenceInput
    started: float = field(default_factory=time.perf_counter)
    replay: ChatReply | None = None  # the stored answer to an Idempotency-Key seen before
    idempotency_digest: str = ""
    record_version: bool = False  # store `role.version` with the session (its first turn, or a move)


class ChatService:
    def __init__(
        self,
        roles: Mapping[str, Role] | RoleRegistry[Role],
        backends: Mapping[str, InferenceBackend],
        store: SessionStore,
        *,
        observer: ChatObserver | None = None,
        max_message_chars: int = 4000,
        limits: Limits | None = None,
    ) -> None:
        if not roles:
            raise ValueError("ChatService needs at least one role")
        self._catalog = RoleCatalog(as_registry(roles), backends)
        self.observer: ChatObserver = observer or NullObserver()
        self.store = TimedStore(store, self.observer)
        self._max_message_chars = max_message_chars
        self.limits = limits or Limits(max_message_chars=max_message_chars)
        self.idempotency = ChatIdempotency(lambda owner, key: self.store.find_idempotent(owner, key, None))

    @property
    def catalog(self) -> RoleCatalog:
        return self._catalog

    @property
    def roles(self) -> RoleRegistry[Role]:
        """As a mapping: name → default version; `role()` also resolves `name@version`."""
        return self._catalog.registry

    @property
    def default_role(self) -> str:
        return next(iter(self._catalog.registry))

    def replace_catalog(self, catalog: RoleCatalog) -> None:
        """Serve `catalog` from the next request on (a hot reload). One assignment: requests already
        prepared keep the `Role` they resolved, and its backend stays reachable."""
        if not catalog.registry:
            raise ValueError("a role catalog needs at least one role")
        self._catalog = catalog

    def role(self, reference: str | None) -> Role:
        """The role a request names: `name` (its default version), `name@version`, or the default role."""
        try:
            registry = self._catalog.registry  # read once: a reload may swap it meanwhile
            return registry.resolve(reference or next(iter(registry)))
        except UnknownRoleReference as exc:
            raise UnknownRole(exc.message) from None

    def route(
        self, name: str, reference: str | None, session_id: str, headers: Mapping[str, str]
    ) -> Role:
        """The version of role `name` that answers: the request's pin, else the role's release policy."""
        return self.role(routed_reference(self.roles, name, reference, session_id, headers))

    def backend(self, role: Role) -> InferenceBackend:
        # Keyed per version (`name@version`) when versions differ in backend, else by role name.
        return self._catalog.backend(role)

    def _check_message(self, message: str) -> None:
        if not message.strip():
            raise InvalidInput("message must not be empty")
        if len(message) > self._max_message_chars:
            raise InvalidInput(
                f"message is {len(message)} characters; at most {self._max_message_chars} allowed"
            )

    def inference_input(
        self, role: Role, history: tuple[ChatMessage, ...], message: str, max_tokens: int | None = None
    ) -> InferenceInput:
        constraints = role.response_constraints
        if max_tokens is not None and max_tokens < constraints.max_tokens:
            constraints = constraints.model_copy(update={"max_tokens": max_tokens})
        return InferenceInput(
            role_name=role.name,
            role_version=role.version,
            system_prompt=role.system_prompt(),
            history=history,
            message=message,
            persona=role.persona,
            constraints=constraints,
            timing=role.inference.simulator,
            temperature=role.inference.temperature,
        )

    async def prepare(self, command: ChatCommand, parent: Span | None = None) -> PreparedChat:
        """Validate and load the session; with an Idempotency-Key, claim it or find its stored answer."""
        # Without a key nothing is claimed or recorded, so the canonical JSON and its hash are skipped.
        digest = (
            ""
            if command.idempotency_key is None
            else self.idempotency.digest(command.message, command.role, command.session_id)
        )
        stored = await self.idempotency.claim(command.owner, command.idempotency_key, digest)
        if stored is not None:
            # A replay answers what was stored, even if the session has filled up since.
            replay = ChatReply(**{**stored, "usage": Usage(**stored["usage"])})
            version = replay.role_version
            role = self.role(f"{replay.role}{VERSION_SEPARATOR}{version}" if version else replay.role)
            inputs = self.inference_input(role, (), command.message)
            return PreparedChat(command, role, replay.session_id, inputs, replay=replay,
                                idempotency_digest=digest)
        try:
            prepared = await self._prepare_new(command, parent)
        except BaseException:
            self.idempotency.release(command.owner, command.idempotency_key)
            raise
        prepared.idempotency_digest = digest
        return prepared

    async def _prepare_new(self, command: ChatCommand, parent: Span | None) -> PreparedChat:
        self._check_message(command.message)
        role = self.role(command.role)
        turns: list[Turn] = []
        session: SessionRecord | None = None
        session_id = command.session_id or secrets.token_urlsafe(16)
        if command.session_id is not None:
            session = await self.store.get_session(command.session_id, policy_view(role), parent)
            if session is not None:
                if session.owner != command.owner:
                    raise SessionNotFound(f"no session {command.session_id!r}")
                if session.role_name != role.name:
                    if command.role is not None:
                        raise SessionConflict(
                            f"session {command.session_id!r} talks to role {session.role_name!r}, "
                            f"not {role.name!r}"
                        )
                    role = self.role(session.role_name)
                check_turns(len(session.turns), self.limits)
                turns = session.turns
        # The version comes last: the session's stored one, else the policy's pick for its id.
        routed = session_route(
            self.roles,
            role.name,
            command.role,
            session_id,
            command.headers,
            new_session=session is None,
            stored_version=session.role_version if session is not None else None,
        )
        role = self.role(routed.reference)
        if routed.moved_from is not None:
            self.observer.session_version_moved(role.name, role.version, moved_from=routed.moved_from)
        history = prompt_history(turns, role.memory_policy.decay)
        inputs = self.inference_input(
            role, history, command.message, max_tokens=self.limits.max_output_tokens
        )
        return PreparedChat(command, role, session_id, inputs, record_version=routed.record)

    def first_token(self, span: Span, role: Role, provider: str, seconds: float, trace_id: str) -> None:
        """The time to first token, on the chat span (joinable by trace id) and to the observer."""
        span.set_attribute(TTFT_ATTRIBUTE, seconds)
        self.observer.first_token(
            role.name, role.inference.model, provider, seconds, trace_id, role_version=role.version
        )

    def inference_span(self, role: Role, parent: Span) -> Span:
        backend = self.backend(role)
        return tracer.start_span(
            "inference",
            context=trace.set_span_in_context(parent),
            kind=trace.SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": backend.provider_name,
                "gen_ai.request.model": role.inference.model,
                "rolescope.role": role.name,
                ROLE_VERSION_ATTRIBUTE: role.version,
            },
        )

    def translate(self, exc: InferenceError, role: Role) -> ServiceError:
        if isinstance(exc, InferenceTimeoutError):
            self.observer.inference_timeout(role.name, role.inference.model, role_version=role.version)
            return InferenceTimedOut(
                f"role {role.name!r} did not answer within {role.inference.timeout_ms} ms"
            )
        self.observer.inference_error(role.name, role.inference.model, role_version=role.version)
        return InferenceFailed(f"role {role.name!r} failed to answer")

    def fail_inference(self, span: Span, exc: InferenceError, role: Role) -> ServiceError:
        """One failure path for every route, streamed or not, so a failed generation looks
        the same in traces and metrics whichever route served it. Returned, not raised:
        the streaming chat route yields it as an event instead.
        """
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        span.end()
        return self.translate(exc, role)

    async def _finish(
        self,
        prepared: PreparedChat,
        content: str,
        usage: Usage,
        confidence: float,
        trace_id: str,
        parent: Span,
    ) -> ChatReply:
        now = time.time()
        command, role = prepared.command, prepared.role
        reply = ChatReply(
            role.name, content, iso_utc(now), confidence, prepared.session_id, trace_id, usage, role.version
        )
        exchange = ExchangeRecord(
            session_id=prepared.session_id,
            role_name=role.name,
            owner=command.owner,
            user_turn=Turn("user", command.message, command.arrival_unix),
            assistant_turn=Turn("assistant", content, now),
            idempotency=self.idempotency.record(
                command.owner, command.idempotency_key, prepared.idempotency_digest, reply.as_dict()
            ),
            role_version=role.version if prepared.record_version else None,
        )
        await self.store.save_exchange(exchange, policy_view(role), parent)
        return reply

    def _report(
        self,
        prepared: PreparedChat,
        status: int,
        ttft_s: float | None,
        output_tokens: int,
        reply: ChatReply | None = None,
    ) -> None:
        command = prepared.command
        # The exchange is stored or has failed: a retry with the same Idempotency-Key may run now.
        self.idempotency.release(command.owner, command.idempotency_key)
        self.observer.exchange_completed(
            ExchangeSummary(
                arrival_unix=command.arrival_unix,
                session_id=prepared.session_id,
                client_id=command.client_id,
                role=prepared.role.name,
                message=command.message,
                stream=command.stream,
                status=status,
                latency_s=time.perf_counter() - prepared.started,
                ttft_s=ttft_s,
                output_tokens=output_tokens,
                role_version=prepared.role.version,
                content=reply.content if reply is not None else None,
                confidence=reply.confidence_score if reply is not None else None,
                history=prepared.inputs.history,
            )
        )

    def _generation_done(
        self,
        prepared: PreparedChat,
        span: Span,
        duration: float,
        ttft: float | None,
        usage: Usage,
        trace_id: str,
    ) -> None:
        role = prepared.role
        span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
        span.end()  # ended here, not before: an ended span drops the usage attributes
        tpot = (
            (duration - ttft) / (usage.output_tokens - 1)
            if ttft is not None and usage.output_tokens > 1
            else None
        )
        self.observer.generation_done(
            role.name,
            role.inference.model,
            self.backend(role).provider_name,
            duration,
            tpot,
            usage.input_tokens,
            usage.output_tokens,
            trace_id,
            role_version=role.version,
        )

    async def complete(self, prepared: PreparedChat) -> ChatReply:
        if prepared.replay is not None:
            return prepared.replay
        role, backend = prepared.role, self.backend(prepared.role)
        status, output_tokens, ttft, reply = 500, 0, None, None
        with tracer.start_as_current_span("chat", attributes=role_attributes(role)) as span:
            trace_id = trace_id_of(span)
            span.set_attribute("rolescope.session.new", prepared.command.session_id is None)
            try:
                inference_span = self.inference_span(role, span)
                started = time.perf_counter()
                try:
                    result = await backend.infer(
                        role.inference.model, prepared.inputs, role.inference.timeout_ms
                    )
                except InferenceError as exc:
                    error = self.fail_inference(inference_span, exc, role)
                    status = error.status
                    raise error from exc
                except BaseException:
                    inference_span.end()
                    raise
                duration = time.perf_counter() - started
                ttft = result.ttft_s
                if ttft is not None:
                    self.first_token(span, role, backend.provider_name, ttft, trace_id)
                self._generation_done(prepared, inference_span, duration, ttft, result.usage, trace_id)
                confidence = result.confidence if result.confidence is not None else DEFAULT_CONFIDENCE
                reply = await self._finish(prepared, result.text, result.usage, confidence, trace_id, span)
                status, output_tokens = 200, result.usage.output_tokens
                return reply
            except ServiceError as exc:
                status = exc.status
                raise
            finally:
                self._report(prepared, status, ttft, output_tokens, reply)

    async def stream(self, prepared: PreparedChat) -> AsyncIterator[StreamEvent]:
        if prepared.replay is not None:
            yield DoneEvent(prepared.replay)
            return
        role, backend = prepared.role, self.backend(prepared.role)
        span = tracer.start_span("chat", attributes={**role_attributes(role), "rolescope.stream": True})
        trace_id = trace_id_of(span)
        inference_span = self.inference_span(role, span)
        status, ttft, pieces = 499, None, []  # 499: the client went away before the end
        usage, confidence = Usage(0, 0), DEFAULT_CONFIDENCE
        reply: ChatReply | None = None
        try:
            started = time.perf_counter()
            try:
                async for chunk in backend.infer_stream(
                    role.inference.model, prepared.inputs, role.inference.timeout_ms
                ):
                    if chunk.text:
                        if ttft is None:
                            ttft = time.perf_counter() - started
                            self.first_token(span, role, backend.provider_name, ttft, trace_id)
                        pieces.append(chunk.text)
                        yield TokenEvent(chunk.text, len(pieces) - 1)
                    if chunk.usage is not None:
                        usage = chunk.usage
                    if chunk.confidence is not None:
                        confidence = chunk.confidence
            except InferenceError as exc:
                error = self.fail_inference(inference_span, exc, role)
                status = error.status
                yield ErrorEvent(error)
                return
            except BaseException:
                inference_span.end()
                raise
            self._generation_done(
                prepared, inference_span, time.perf_counter() - started, ttft, usage, trace_id
            )
            try:
                reply = await self._finish(prepared, "".join(pieces), usage, confidence, trace_id, span)
            except ServiceError as exc:
                status = exc.status
                yield ErrorEvent(exc)
                return
            status = 200
            yield DoneEvent(reply)
        finally:
            span.set_attribute("http.response.status_code", status)
            span.end()
            self._report(prepared, status, ttft, usage.output_tokens, reply)

    async def history(self, session_id: str, owner: str | None) -> tuple[Role, SessionRecord]:
        """A session's turns, for its owner only; 404 for anyone else, as if it did not exist."""
        # The first read only finds which role the session talks to; the second applies that role's policy.
        probe = await self.store.get_session(session_id, MemoryPolicyView(1, None), None)
        role = self.roles.get(probe.role_name) if probe is not None and probe.owner == owner else None
        session = await self.store.get_session(session_id, policy_view(role), None) if role else None
        if role is None or session is None:
            raise SessionNotFound(f"no session {session_id!r}")
        return role, session
