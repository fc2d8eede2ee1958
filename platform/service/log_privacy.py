"""Keeps request content out of the access log.

`GET /v1/chat?message=…` carries the user's message in the query string (so `curl -N` works),
and uvicorn's access log prints the full path. The filter below keeps the path and replaces the
query string with a marker, so a message — and any personal data or secret in it — never lands
in a log line.
"""

from __future__ import annotations

import logging

ACCESS_LOGGER = "uvicorn.access"
REDACTED_QUERY = "?<redacted>"


def redact_query(path: str) -> str:
    base, separator, _ = path.partition("?")
    return base + REDACTED_QUERY if separator else base


class QueryStringRedactor(logging.Filter):
    """Rewrites uvicorn's access-log record (client, method, path, http version, status) in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], redact_query(args[2]), *args[3:])
        return True


def install_access_log_redaction() -> None:
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(existing, QueryStringRedactor) for existing in logger.filters):
        logger.addFilter(QueryStringRedactor())
