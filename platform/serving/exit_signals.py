"""Starts an app's drain the moment its server is told to exit (SIGINT / SIGTERM).

uvicorn installs its own exit handlers with `signal.signal` for as long as it
serves, and the app's lifespan runs inside that window, on the main thread. So
the lifespan chains the app's `DrainSignal` in front of whatever handler is
there (uvicorn's, in a single process and in every `--workers` child alike) and
puts it back at shutdown. The drain must begin before uvicorn waits for
in-flight requests, which is long before the lifespan's shutdown half runs.
Without a handler to chain to (another thread, or no server catching the
signals), nothing is installed: no one would wait for streams anyway.

With `hold` (the open WebSockets' `wait_closed`), the server's handler is
called only once `hold` returns or `drain.backstop_s` has passed: uvicorn closes
every open WebSocket with 1012 as soon as its handler runs, before any turn in
flight could send its terminal frame and close with 1001. Without open
WebSockets `hold` returns at once. A second signal goes straight through.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from rolescope.service.shutdown import DrainSignal

EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)
Handler = Callable[[int, FrameType | None], Any]


Hold = Callable[[], Awaitable[None]]


def _chained(
    drain: DrainSignal, previous: Handler, hold: Hold | None, loop: asyncio.AbstractEventLoop | None
) -> Handler:
    holding: list[asyncio.Task[None] | None] = []  # the task is kept so it is not collected

    async def then_pass_on(sig: int, frame: FrameType | None) -> None:
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain.backstop_s):
                    await hold()  # type: ignore[misc]
        finally:
            previous(sig, frame)

    def handle(sig: int, frame: FrameType | None) -> Any:
        drain.begin()
        if hold is None or loop is None or loop.is_closed() or holding:
            return previous(sig, frame)
        # A signal handler may run in the middle of the loop's own bookkeeping: hand over thread-safely.
        holding.append(None)
        loop.call_soon_threadsafe(lambda: holding.append(loop.create_task(then_pass_on(sig, frame))))
        return None

    return handle


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@contextmanager
def drain_on_exit_signals(drain: DrainSignal, hold: Hold | None = None) -> Iterator[None]:
    """While open, SIGINT and SIGTERM begin `drain`, then (after `hold`) reach the installed handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = _running_loop()
    replaced: dict[signal.Signals, Handler] = {}
    for sig in EXIT_SIGNALS:
        previous = signal.getsignal(sig)
        if callable(previous):
            signal.signal(sig, _chained(drain, previous, hold, loop))
            replaced[sig] = previous
    try:
        yield
    finally:
        for sig, previous in replaced.items():
            signal.signal(sig, previous)


HANGUP = signal.SIGHUP


def _chained_hangup(action: Callable[[], object], previous: Handler | None) -> Handler:
    def handle(sig: int, frame: FrameType | None) -> Any:
        action()
        return previous(sig, frame) if previous is not None else None

    return handle


@contextmanager
def call_on_hangup(action: Callable[[], object]) -> Iterator[None]:
    """While open, SIGHUP calls `action`, then any SIGHUP handler installed before (so reloads chain).

    Without this the default SIGHUP action would end the process. Only on the main thread, where
    Python runs signal handlers; elsewhere nothing is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(HANGUP)
    signal.signal(HANGUP, _chained_hangup(action, previous if callable(previous) else None))
    try:
        yield
    finally:
        signal.signal(HANGUP, previous)
