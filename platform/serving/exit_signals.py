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
