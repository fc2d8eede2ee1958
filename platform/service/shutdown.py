"""Graceful shutdown: on SIGTERM, drain in-flight work and end every open stream with a terminal event.

uvicorn already stops accepting connections on SIGTERM, waits for in-flight
requests up to `timeout_graceful_shutdown`, then runs the lifespan shutdown
(where the store is closed and telemetry flushed). What it cannot do is end an
SSE stream that would outlive that timeout: the stream would be cancelled and
the client would see a truncated reply with no terminal event. So:

- `DrainSignal` learns of the exit signal the moment uvicorn does (the
  composition root, `rolescope.serving`, chains it to uvicorn's SIGINT/SIGTERM
  handlers while the app runs); each app owns its own signal;
- `drain_aware` wraps a stream's event generator: after the signal, a stream
  may keep going for `grace_s` (most replies finish), then it is closed and
  one terminal event (the caller's `farewell`, an `error` event) is sent.

The wrapper subscribes once per stream and costs two flag writes per event: the
deadline timer exists only once draining has begun, and it cancels the stream's
task only while that task waits for its next event, never while it sends one.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

T = TypeVar("T")

# Share of the shutdown timeout a stream may keep generating before it is ended; the rest is
# headroom for the terminal event, the lifespan shutdown (store close, telemetry flush) and exit.
STREAM_GRACE_SHARE = 0.5
# The event-stream response cuts a stream still running this long after the drain began; it must
# wait longer than the grace period (so the terminal event goes out first) and less than the
# shutdown timeout.
STREAM_BACKSTOP_SHARE = 0.8
SHUTDOWN_CODE = "shutting_down"
SHUTDOWN_MESSAGE = "the service is shutting down before this reply finished; send the message again"


def stream_grace_s(shutdown_timeout_s: float) -> float:
    return max(0.0, shutdown_timeout_s * STREAM_GRACE_SHARE)


def stream_backstop_s(shutdown_timeout_s: float) -> float:
    return max(0.0, shutdown_timeout_s * STREAM_BACKSTOP_SHARE)


class DrainSignal:
    """Set once when the process starts shutting down; wakes every stream waiting on it."""

    def __init__(self, grace_s: float = 0.0, backstop_s: float = 0.0) -> None:
        self._draining = False
        self._lock = threading.Lock()
        self._deadline: dict[asyncio.AbstractEventLoop, float] = {}
        self._listeners: dict[asyncio.AbstractEventLoop, set[Callable[[], None]]] = {}
        self.grace_s = grace_s
        self.backstop_s = backstop_s

    @classmethod
    def for_shutdown_timeout(cls, shutdown_timeout_s: float) -> DrainSignal:
        """The signal for a server that waits `shutdown_timeout_s` for in-flight work."""
        return cls(stream_grace_s(shutdown_timeout_s), stream_backstop_s(shutdown_timeout_s))

    @property
    def draining(self) -> bool:
        return self._draining

    def begin(self, grace_s: float | None = None) -> None:
        """Start draining (safe from a signal handler or any thread); later calls do nothing."""
        with self._lock:
            if self._draining:
                return
            if grace_s is not None:
                self.grace_s = grace_s
            self._draining = True
            loops = list(self._listeners)
        for loop in loops:
            # Listeners arm timers, which belong to their loop: call them from inside it.
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(self._arm, loop)

    def reset(self) -> None:
        """Back to serving (tests and in-process restarts)."""
        with self._lock:
            self._draining = False
            self._deadline.clear()

    def deadline(self, loop: asyncio.AbstractEventLoop) -> float:
        if loop not in self._deadline:
            self._deadline[loop] = loop.time() + self.grace_s
        return self._deadline[loop]

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        for listener in list(self._listeners.get(loop, ())):
            listener()

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` on the running loop when draining begins (at once if it has); returns the
        unsubscribe function (a stream's grace deadline, an idle WebSocket, a response's backstop)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._listeners.setdefault(loop, set()).add(listener)
            draining = self._draining
        if draining:
            loop.call_soon(listener)

        def unsubscribe() -> None:
            with self._lock:
                listeners = self._listeners.get(loop)
                if listeners is not None:
                    listeners.discard(listener)
                    if not listeners:
                        del self._listeners[loop]

        return unsubscribe


async def drain_aware(
    events: AsyncIterator[T], signal: DrainSignal, farewell: Callable[[], T]
) -> AsyncIterator[T]:
    """Pass `events` through; once draining and past the grace period, close them and yield `farewell()`."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    waiting = expired = cancelled = finished = False
    timer: asyncio.TimerHandle | None = None

    def expire() -> None:
        nonlocal expired, cancelled
        expired = True
        # Only the wait for the next event is cut: the consumer's own awaits (sending to the
        # socket) run to their end, and the loop below stops before asking for another event.
        if waiting and task is not None:
            cancelled = True
            task.cancel()

    def arm() -> None:
        nonlocal timer
        if timer is None and not finished:
            timer = loop.call_at(signal.deadline(loop), expire)

    unsubscribe = signal.subscribe(arm)
    try:
        while not expired:
            waiting = True
            try:
                item = await anext(events)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                # Ours only if nobody else asked to cancel the task as well.
                if not cancelled or task is None or task.uncancel() > 0:
                    raise
                break
            finally:
                waiting = False
            yield item
    finally:
        finished = True
        unsubscribe()
        if timer is not None:
            timer.cancel()
    aclose: Any = getattr(events, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
    yield farewell()
