"""Errors the business layer raises and the edge turns into `{"error": {"code", "message"}}`.

Plain Python (no FastAPI) so the chat orchestration can raise them; `error_handlers`
maps them, and every other exception, to JSON. A message never carries a stack
trace or an internal path.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class InvalidInput(ServiceError):
    status, code = 422, "invalid_request"


class PayloadTooLarge(ServiceError):
    status, code = 413, "payload_too_large"


class UnknownRole(ServiceError):
    status, code = 404, "unknown_role"


class SessionNotFound(ServiceError):
    status, code = 404, "session_not_found"


class SessionConflict(ServiceError):
    status, code = 409, "session_role_mismatch"


class SessionAlreadyOpen(ServiceError):
    status, code = 409, "session_already_open"


class Overloaded(ServiceError):
    status, code = 503, "overloaded"


class StoreUnavailable(ServiceError):
    status, code = 503, "store_unavailable"


class InferenceTimedOut(ServiceError):
    status, code = 504, "inference_timeout"


class InferenceFailed(ServiceError):
    status, code = 500, "inference_failed"


def error_body(code: str, message: str) -> dict[str, Any]:
    """The one spelling of the error shape: handlers, the middlewares that answer before routing
    (admission, API keys, `/metrics` on its own port) and WebSocket error frames all use it."""
    return {"error": {"code": code, "message": message}}
