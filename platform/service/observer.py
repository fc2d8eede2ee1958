"""What the business layer tells telemetry, as one small Protocol.

The chat orchestration calls these hooks on its hot path, so implementations
must be cheap and must never raise into a request: `CompositeObserver` swallows
and logs (once per hook) anything an observer throws. HTTP-level metrics do not
come through here; an ASGI middleware records those.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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
    """The hooks, written once. Each does nothing here, so a class that subclasses this (as
    `NullObserver` does) inherits a no-op for every hook it does not override, while a class that
    only spells the methods (`ServiceMetrics`) still satisfies it structurally."""

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


# Read off the protocol, so a hook added there is fanned out without being listed again.
HOOKS: tuple[str, ...] = tuple(
    name for name, value in vars(ChatObserver).items() if callable(value) and not name.startswith("_")
)


class NullObserver(ChatObserver):
    """Observes nothing: the default when no telemetry is installed."""


def _fan_out(hook: str) -> Callable[..., None]:
    def fan_out(self: CompositeObserver, *args: object, **keywords: object) -> None:
        calls = self._hooks[hook]
        for call in calls:
            try:
                call(*args, **keywords)
            except Exception:
                self._failed(calls.index(call), hook)

    fan_out.__name__ = fan_out.__qualname__ = hook
    fan_out.__doc__ = f"`{hook}` on every observer, in order."
    return fan_out


def _fanning_out(cls: type[CompositeObserver]) -> type[CompositeObserver]:
    for hook in HOOKS:
        setattr(cls, hook, _fan_out(hook))
    return cls


@_fanning_out
class CompositeObserver(ChatObserver):
    """Fans every hook out to several observers; one failing observer never breaks a request.

    `_fanning_out` makes its hooks from `HOOKS` when the class is defined, each passing its
    arguments on as given; type checkers see the signatures it inherits from the protocol.
    """

    def __init__(self, *observers: ChatObserver) -> None:
        self._observers = observers
        # Bound once: a hook on the hot path then costs a dict lookup and the calls themselves.
        self._hooks: dict[str, tuple[Callable[..., object], ...]] = {
            hook: tuple(getattr(observer, hook) for observer in observers) for hook in HOOKS
        }
        self._failed_hooks: set[tuple[int, str]] = set()

    @property
    def observers(self) -> tuple[ChatObserver, ...]:
        return self._observers

    def _failed(self, index: int, hook: str) -> None:
        if (index, hook) not in self._failed_hooks:
            self._failed_hooks.add((index, hook))
            logger.exception(
                "observer %s failed in %s; further failures are not logged",
                type(self._observers[index]).__name__,
                hook,
            )
