"""What the business layer tells telemetry, as one small Protocol.

The chat orchestration calls these hooks on its hot path, so implementations
must be cheap and must never raise into a request: `CompositeObserver` swallows
and logs (once per hook) anything an observer throws. HTTP-level metrics do not
come through here; an ASGI middleware records those.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from rolescope.inference.base import ChatMessage

logger = logging.getLogger("rolescope.service.observer")


@dataclass(frozen=True, slots=True)
class ExchangeSummary:
    """One finished chat exchange as seen from the edge (used by shadow-traffic capture)."""

    arrival_unix: float
    session_id: str
    client_id: str | None
    role: str
    message: str
    stream: bool
    status: int
    latency_s: float
    ttft_s: float | None
    output_tokens: int
    max_tokens: int | None = None  # the output-token limit the request asked for, when it said
    role_version: str | None = None  # the version that answered
    # What shadow mirroring pairs with a candidate's answer: its text and confidence (None when it
    # failed), and the history its prompt carried.
    content: str | None = None
    confidence: float | None = None
    history: tuple[ChatMessage, ...] = ()


@runtime_checkable
class ChatObserver(Protocol):
    def first_token(
        self,
        role: str,
        model: str,
        provider: str,
        seconds: float,
        trace_id: str | None,
        *,
        role_version: str | None = None,
    ) -> None: ...

    def generation_done(
        self,
        role: str,
        model: str,
        provider: str,
        duration_s: float,
        tpot_s: float | None,
        input_tokens: int,
        output_tokens: int,
        trace_id: str | None,
        *,
        role_version: str | None = None,
    ) -> None: ...

    def inference_timeout(self, role: str, model: str, *, role_version: str | None = None) -> None: ...

    def inference_error(self, role: str, model: str, *, role_version: str | None = None) -> None: ...

    def store_operation(self, operation: str, backend: str, seconds: float) -> None: ...

    def exchange_completed(self, summary: ExchangeSummary) -> None: ...

    def session_version_moved(self, role: str, role_version: str, *, moved_from: str) -> None:
        """A session's stored version is no longer loaded; `role_version` answers it from now on."""
        ...


class NullObserver:
    """Observes nothing: the default when no telemetry is installed."""

    def first_token(
        self,
        role: str,
        model: str,
        provider: str,
        seconds: float,
        trace_id: str | None,
        *,
        role_version: str | None = None,
    ) -> None:
        return None

    def generation_done(
        self,
        role: str,
        model: str,
        provider: str,
        duration_s: float,
        tpot_s: float | None,
        input_tokens: int,
        output_tokens: int,
        trace_id: str | None,
        *,
        role_version: str | None = None,
    ) -> None:
        return None

    def inference_timeout(self, role: str, model: str, *, role_version: str | None = None) -> None:
        return None

    def inference_error(self, role: str, model: str, *, role_version: str | None = None) -> None:
        return None

    def store_operation(self, operation: str, backend: str, seconds: float) -> None:
        return None

    def exchange_completed(self, summary: ExchangeSummary) -> None:
        return None

    def session_version_moved(self, role: str, role_version: str, *, moved_from: str) -> None:
        return None


class CompositeObserver:
    """Fans every hook out to several observers; one failing observer never breaks a request."""

    def __init__(self, *observers: ChatObserver) -> None:
        self._observers = observers
        self._failed_hooks: set[tuple[int, str]] = set()

    @property
    def observers(self) -> tuple[ChatObserver, ...]:
        return self._observers

    def _each(self, hook: str, *args: object, **keywords: object) -> None:
        for index, observer in enumerate(self._observers):
            try:
                getattr(observer, hook)(*args, **keywords)
            except Exception:
                if (index, hook) not in self._failed_hooks:
                    self._failed_hooks.add((index, hook))
                    logger.exception(
                        "observer %s failed in %s; further failures are not logged",
                        type(observer).__name__,
                        hook,
                    )

    def first_token(
        self,
        role: str,
        model: str,
        provider: str,
        seconds: float,
        trace_id: str | None,
        *,
        role_version: str | None = None,
    ) -> None:
        self._each("first_token", role, model, provider, seconds, trace_id, role_version=role_version)

    def generation_done(
        self,
        role: str,
        model: str,
        provider: str,
        duration_s: float,
        tpot_s: float | None,
        input_tokens: int,
        output_tokens: int,
        trace_id: str | None,
        *,
        role_version: str | None = None,
    ) -> None:
        self._each(
            "generation_done",
            role,
            model,
            provider,
            duration_s,
            tpot_s,
            input_tokens,
            output_tokens,
            trace_id,
            role_version=role_version,
        )

    def inference_timeout(self, role: str, model: str, *, role_version: str | None = None) -> None:
        self._each("inference_timeout", role, model, role_version=role_version)

    def inference_error(self, role: str, model: str, *, role_version: str | None = None) -> None:
        self._each("inference_error", role, model, role_version=role_version)

    def store_operation(self, operation: str, backend: str, seconds: float) -> None:
        self._each("store_operation", operation, backend, seconds)

    def exchange_completed(self, summary: ExchangeSummary) -> None:
        self._each("exchange_completed", summary)

    def session_version_moved(self, role: str, role_version: str, *, moved_from: str) -> None:
        self._each("session_version_moved", role, role_version, moved_from=moved_from)
