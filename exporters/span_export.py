"""Spans leave through a bounded batch queue only; whatever cannot leave is dropped and counted.

Built on the SDK's public interfaces alone (`SpanProcessor`, `SpanExporter`), so
a change inside the SDK cannot silently stop the count:

- `DropCountingExporter` wraps the OTLP exporter: a failed or raising export
  counts its spans as `export_failed` (and logs once), never raises.
- `BoundedBatchSpanProcessor` hands sampled spans to a `BatchSpanProcessor`
  while the queue it feeds has room, and counts the rest as `queue_full`. It
  knows how full that queue is from its two ends: a span goes in when it is
  handed over and comes out when the exporter receives it, which the wrapped
  exporter reports. The SDK itself would evict the oldest span and log a
  warning for each one — thousands of lines a second under a dead collector.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from rolescope.exporters import names

log = logging.getLogger(__name__)

DropCounter = Callable[[str, int], None]  # (reason, spans)

# The OTLP exporters log every failed batch; rolescope logs the first one and counts the rest.
_EXPORTER_LOGGERS: Final = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
)


class _OnlyFirstRecord(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self._seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        first, self._seen = not self._seen, True
        return first


_quieted = threading.Lock()


def quiet_exporter_loggers() -> None:
    with _quieted:
        for name in _EXPORTER_LOGGERS:
            logger = logging.getLogger(name)
            if not any(isinstance(f, _OnlyFirstRecord) for f in logger.filters):
                logger.addFilter(_OnlyFirstRecord())


class DropCountingExporter(SpanExporter):
    """Wraps an exporter: a failed batch is counted as dropped spans, never raised.

    `on_taken(n)` is told of every batch as it arrives, before it is sent.
    """

    def __init__(
        self,
        inner: SpanExporter,
        on_drop: DropCounter,
        endpoint: str,
        on_taken: Callable[[int], None] | None = None,
    ) -> None:
        self._inner = inner
        self._on_drop = on_drop
        self._on_taken = on_taken
        self._endpoint = endpoint
        self._logged = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._on_taken is not None:
            self._on_taken(len(spans))
        try:
            result = self._inner.export(spans)
            error = "" if result is SpanExportResult.SUCCESS else "the exporter reported a failure"
        except Exception as exc:  # telemetry must never break the host
            result, error = SpanExportResult.FAILURE, repr(exc)
        if result is not SpanExportResult.SUCCESS:
            self._on_drop(names.DROP_REASON_EXPORT_FAILED, len(spans))
            if not self._logged.is_set():
                self._logged.set()
                log.warning(
                    "exporting spans to %s failed (%s); spans are dropped and counted in %s from now on",
                    self._endpoint,
                    error,
                    names.TELEMETRY_DROPPED_TOTAL,
                )
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class BoundedBatchSpanProcessor(SpanProcessor):
    """A `BatchSpanProcessor` that is never handed more spans than its queue holds; the rest are counted."""

    def __init__(
        self,
        exporter: SpanExporter,
        on_drop: DropCounter,
        endpoint: str,
        *,
        max_queue_size: int,
        **batch_options: Any,
    ) -> None:
        self._on_drop = on_drop
        self._capacity = max_queue_size
        self._queued = 0  # handed to the batch processor and not yet received by the exporter
        self._lock = threading.Lock()
        self._closed = False
        counting = DropCountingExporter(exporter, on_drop, endpoint, on_taken=self._taken)
        self._batch = BatchSpanProcessor(counting, max_queue_size=max_queue_size, **batch_options)

    def _taken(self, spans: int) -> None:
        with self._lock:
            self._queued -= spans

    @property
    def queued(self) -> int:
        """Spans waiting in the queue (an upper bound while a batch is being taken)."""
        return self._queued

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if self._closed or not (span.context and span.context.trace_flags.sampled):
            return
        with self._lock:
            full = self._queued >= self._capacity
            if not full:
                self._queued += 1
        if full:
            self._on_drop(names.DROP_REASON_QUEUE_FULL, 1)
            return
        self._batch.on_end(span)

    def shutdown(self) -> None:
        self._closed = True
        self._batch.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._batch.force_flush(timeout_millis)
