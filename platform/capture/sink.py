"""A bounded queue and a background thread that redact and append capture records.

The request path only does `offer()`, a non-blocking put: when the queue is
full, or the file cannot be written, records are dropped and counted instead
of slowing or failing a request. Redaction runs on the writer thread, before
the record is serialised, so no unredacted byte ever reaches the file.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from rolescope.exporters import names

logger = logging.getLogger("rolescope.capture")

DropCounter = Callable[[str, str, int], None]  # (signal, reason, amount)
_STOP = object()


class CaptureSink:
    """Owns the queue, the writer thread and the open file."""

    def __init__(
        self,
        path: Path,
        render: Callable[[object], str],
        count_dropped: DropCounter,
        max_queue: int = 10_000,
    ) -> None:
        self.path = path
        self._render = render  # redacts and serialises one item into a JSON line
        self._count_dropped = count_dropped
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="rolescope-capture", daemon=True)
        self._broken = False
        self.written = 0
        self.dropped = 0

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def offer(self, item: object) -> None:
        """Queue one item without ever blocking; drop and count it when that is impossible."""
        if self._broken:
            self._drop(names.DROP_REASON_EXPORT_FAILED)
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._drop(names.DROP_REASON_QUEUE_FULL)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (within `timeout`) and stop the thread."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(timeout)

    def _drop(self, reason: str, amount: int = 1) -> None:
        self.dropped += amount
        try:
            self._count_dropped(names.SIGNAL_CAPTURE, reason, amount)
        except Exception:  # counting must not break the caller either
            logger.debug("could not count a dropped capture record", exc_info=True)

    def _open(self) -> IO[str] | None:
        try:
            return self.path.open("a", encoding="utf-8")
        except OSError as exc:
            logger.warning("shadow-traffic capture disabled: cannot open %s (%s)", self.path, exc.strerror)
            self._broken = True
            return None

    def _run(self) -> None:
        out = self._open()
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            if out is None:
                self._drop(names.DROP_REASON_EXPORT_FAILED)
                continue
            try:
                line = self._render(item)
            except Exception:  # one odd exchange (say, an oversize message) must not stop capture
                logger.debug("capture record could not be rendered", exc_info=True)
                self._drop(names.DROP_REASON_EXPORT_FAILED)
                continue
            try:
                out.write(line + "\n")
                # Flush when the queue runs dry: records reach the file promptly without a write per record.
                if self._queue.empty():
                    out.flush()
                self.written += 1
            except (OSError, ValueError) as exc:
                logger.warning("shadow-traffic capture stopped writing %s: %s", self.path, exc)
                self._broken = True
                self._drop(names.DROP_REASON_EXPORT_FAILED)
                out = None
        if out is not None:
            with contextlib.suppress(OSError):
                out.close()
