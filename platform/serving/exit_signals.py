"""Starts an app's drain the moment its server is told to exit (SIGINT / SIGTERM).

uvicorn installs its own exit handlers with `signal.signal` for as long as it
serves, and the app's lifespan runs inside that window, on the main thread. So
the lifespan chains the app's `DrainSignal` in front of whatever handler is
there (uvicorn's, in a single process and in every `--workers` child alike) and
puts it back at shutdown. The drain must begin before uvicorn waits for
in-flight requests, which is long before the lifespan's shutdown half runs.
Without a handler to chain to (another thread, or no server catching the
signals), nothing is installed: no one would wait for streams anyway.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from rolescope.service.shutdown import DrainSignal

EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)
Handler = Callable[[int, FrameType | None], Any]


def _chained(drain: DrainSignal, previous: Handler) -> Handler:
    def handle(sig: int, frame: FrameType | None) -> Any:
        drain.begin()
        return previous(sig, frame)

    return handle


@contextmanager
def drain_on_exit_signals(drain: DrainSignal) -> Iterator[None]:
    """While open, SIGINT and SIGTERM begin `drain`, then reach the handler that was installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    replaced: dict[signal.Signals, Handler] = {}
    for sig in EXIT_SIGNALS:
        previous = signal.getsignal(sig)
        if callable(previous):
            signal.signal(sig, _chained(drain, previous))
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
