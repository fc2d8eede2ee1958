"""Builds the capture observer from `Settings` and joins it to the service's other observers."""

from __future__ import annotations

import logging
from collections.abc import Callable

from rolescope.capture.observer import CaptureObserver
from rolescope.capture.sink import DropCounter
from rolescope.loadtests.redaction import KEY_ENV, KEY_FILE_ENV, load_key
from rolescope.service.observer import ChatObserver, CompositeObserver
from rolescope.settings import Settings

logger = logging.getLogger("rolescope.capture")


def build_capture(settings: Settings, count_dropped: DropCounter) -> CaptureObserver | None:
    """The capture observer when `capture_path` is set, else None. Not started yet."""
    if settings.capture_path is None or settings.capture_sample <= 0:
        return None
    key, ephemeral = load_key()
    if ephemeral:
        logger.warning(
            "capture: no $%s or $%s; session pseudonyms use a random key, unlinkable across restarts",
            KEY_ENV,
            KEY_FILE_ENV,
        )
    return CaptureObserver(
        settings.capture_path, settings.capture_sample, key, count_dropped, max_queue=settings.capture_queue
    )


def with_capture(observer: ChatObserver | None, capture: CaptureObserver | None) -> ChatObserver | None:
    if capture is None:
        return observer
    return capture if observer is None else CompositeObserver(observer, capture)


def late_drop_counter(lookup: Callable[[], DropCounter | None]) -> DropCounter:
    """A drop counter resolved at call time: service metrics are installed after the chat service is built."""

    def count(signal: str, reason: str, amount: int) -> None:
        target = lookup()
        if target is not None:
            target(signal, reason, amount)

    return count
