"""Builds the mirror from `Settings`; the composition root joins it to the other observers."""

from __future__ import annotations

import logging
from collections.abc import Callable

from rolescope.capture.sink import CaptureSink, DropCounter
from rolescope.loadtests.redaction import KEY_ENV, KEY_FILE_ENV, Redactor, load_key
from rolescope.mirroring.mirror import CountMirror, Mirror
from rolescope.service.chat import ChatService
from rolescope.settings import Settings

logger = logging.getLogger("rolescope.mirror")


def build_mirror(
    settings: Settings, service: Callable[[], ChatService], count: CountMirror, count_dropped: DropCounter
) -> Mirror:
    """The mirror (it acts only for roles with a `mirror:` section), writing pairs when a file is set."""
    if settings.mirror_pairs_path is None:
        return Mirror(service, count)
    key, ephemeral = load_key()
    if ephemeral:
        logger.warning(
            "mirror pairs: no $%s or $%s; session pseudonyms use a random key, unlinkable across restarts",
            KEY_ENV,
            KEY_FILE_ENV,
        )
    path = settings.mirror_pairs_path

    def sink(render: Callable[[object], str]) -> CaptureSink:
        return CaptureSink(path, render, count_dropped, settings.capture_queue)

    return Mirror(service, count, pairs=sink, redactor=Redactor(key))
