"""Builds the capture observer from `Settings`; the composition root joins it to the other observers."""

from __future__ import annotations

import logging

from rolescope.capture.observer import CaptureObserver
from rolescope.capture.sink import DropCounter
from rolescope.loadtests.redaction import KEY_ENV, KEY_FILE_ENV, load_key
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
