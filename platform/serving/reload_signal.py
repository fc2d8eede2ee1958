"""SIGHUP reloads the role files, in a single process and in every `--workers` child.

The sibling of `exit_signals.py`: while the lifespan runs, a SIGHUP handler is
chained in front of whatever was installed and put back at shutdown. The
handler runs on the main thread between two bytecodes, possibly in the middle
of the event loop's own bookkeeping, so it only hands the reload over to the
loop (thread-safely); the reload itself runs as a task. With `--workers N` the
supervisor forwards its SIGHUP to every worker (`supervisor.py`) instead of
restarting them.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

RELOAD_SIGNAL = getattr(signal, "SIGHUP", None)


# Set by a SIGHUP that came while the process was starting; the lifespan reloads once it runs.
_hangup_while_starting = threading.Event()


def _remember_hangup(sig: int, frame: FrameType | None) -> None:
    _hangup_while_starting.set()


def defer_hangup_until_served() -> None:
    """In a `--workers` child, before its lifespan runs: SIGHUP's default action would end the
    process, and the supervisor forwards SIGHUP to workers that may still be starting. It is
    remembered instead, and the reload runs as soon as the lifespan does."""
    if RELOAD_SIGNAL is not None and threading.current_thread() is threading.main_thread():
        signal.signal(RELOAD_SIGNAL, _remember_hangup)


def hangup_came_while_starting() -> bool:
    """Whether a SIGHUP came before the lifespan ran (still true until `reload_on_hangup` takes it)."""
    return _hangup_while_starting.is_set()


@contextmanager
def reload_on_hangup(request_reload: Callable[[str], None]) -> Iterator[None]:
    """While open, SIGHUP calls `request_reload("SIGHUP")` on the running event loop."""
    if RELOAD_SIGNAL is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(RELOAD_SIGNAL)

    def handle(sig: int, frame: FrameType | None) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(request_reload, "SIGHUP")

    signal.signal(RELOAD_SIGNAL, handle)
    if _hangup_while_starting.is_set():
        _hangup_while_starting.clear()
        loop.call_soon(request_reload, "SIGHUP during start-up")
    try:
        yield
    finally:
        signal.signal(RELOAD_SIGNAL, previous)
