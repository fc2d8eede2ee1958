"""The live memory meter in the app's lifespan: tracked from start-up, a new window on SIGUSR1.

The meter itself (`rolescope.memory.live`) knows nothing of the app; here it is
started first and stopped last, so a window covers everything the process does.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from rolescope.memory.live import LiveMemoryMeter

ROTATE_SIGNAL = signal.SIGUSR1


@contextmanager
def metering(meter: LiveMemoryMeter) -> Iterator[None]:
    """Track allocations while open; SIGUSR1 writes the current window and starts the next."""
    loop = asyncio.get_running_loop()
    meter.start()
    try:
        loop.add_signal_handler(ROTATE_SIGNAL, meter.rotate)
        try:
            yield
        finally:
            loop.remove_signal_handler(ROTATE_SIGNAL)
    finally:
        meter.stop()
