"""JSON log lines that carry the current trace id, so a log line, a reply and a trace meet.

One object per line: `ts`, `level`, `logger`, `message`, then `trace_id` and
`span_id` when a request is being served (the same ids the reply's `trace_id`
and the exported spans carry), then any `extra=` fields and the exception.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Final, TextIO

from opentelemetry import trace

# Attributes every LogRecord has; anything else was passed with `extra=` and is kept.
_RECORD_FIELDS: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName", "color_message",  # uvicorn repeats the message with ANSI colours
}


def current_trace_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) as hex of the span being served, or None outside a request."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; never raises on odd `extra` values (they become strings)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        ids = current_trace_ids()
        if ids is not None:
            line["trace_id"], line["span_id"] = ids
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def _iso(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def configure_json_logging(level: str | int = "warning", stream: TextIO | None = None) -> logging.Handler:
    """Route the root logger (and uvicorn's loggers) through one JSON handler on stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        # Replace an earlier JSON handler or a plain `basicConfig` one; keep pytest's and others'.
        if isinstance(existing.formatter, JsonFormatter) or type(existing) is logging.StreamHandler:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        for existing in list(uvicorn_logger.handlers):
            if type(existing) is logging.StreamHandler:
                uvicorn_logger.removeHandler(existing)
        uvicorn_logger.propagate = True
    return handler
