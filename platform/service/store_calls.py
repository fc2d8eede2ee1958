"""Session-store calls as the business layer makes them: each one timed, reported and traced.

Instrumentation wraps the store instead of living inside it, so the SQLite and
Redis stores stay free of telemetry and every backend is measured the same way.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from rolescope.service.errors import ServiceError, SessionNotFound, StoreUnavailable
from rolescope.service.observer import ChatObserver
from rolescope.storage.base import (
    ExchangeRecord,
    IdempotencyKeyTaken,
    IdempotencyRecord,
    MemoryPolicyView,
    SessionOwnedElsewhere,
    SessionRecord,
    SessionStore,
    StoreError,
)

T = TypeVar("T")
tracer = trace.get_tracer("rolescope")


class _KeyStoredElsewhere(ServiceError):
    status, code = 409, "idempotency_in_progress"


class TimedStore:
    def __init__(self, store: SessionStore, observer: ChatObserver) -> None:
        self.inner = store
        self._observer = observer

    async def _call(self, operation: str, parent: Span | None, call: Callable[[], Awaitable[T]]) -> T:
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = tracer.start_span(
            f"session_store.{operation}",
            context=context,
            attributes={"db.system.name": self.inner.backend_name.lower(), "db.operation.name": operation},
        )
        started = time.perf_counter()
        try:
            return await call()
        except IdempotencyKeyTaken as exc:
            # Another worker stored this key first: its answer is there for the retry.
            raise _KeyStoredElsewhere(
                "a request with this Idempotency-Key was answered by another worker; retry to get its answer",
                headers={"Retry-After": "1"},
            ) from exc
        except SessionOwnedElsewhere as exc:
            # Same answer as for any session of another owner: nothing tells that it exists.
            raise SessionNotFound("no such session") from exc
        except StoreError as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, "StoreError"))
            raise StoreUnavailable(
                "session memory is unavailable; retry shortly", headers={"Retry-After": "1"}
            ) from exc
        finally:
            self._observer.store_operation(
                operation, self.inner.backend_name.lower(), time.perf_counter() - started
            )
            span.end()

    async def get_session(
        self, session_id: str, policy: MemoryPolicyView, parent: Span | None
    ) -> SessionRecord | None:
        return await self._call("get_session", parent, lambda: self.inner.get_session(session_id, policy))

    async def save_exchange(
        self, exchange: ExchangeRecord, policy: MemoryPolicyView, parent: Span | None
    ) -> None:
        await self._call("save_exchange", parent, lambda: self.inner.save_exchange(exchange, policy))

    async def find_idempotent(
        self, owner: str | None, key: str, parent: Span | None
    ) -> IdempotencyRecord | None:
        return await self._call("find_idempotent", parent, lambda: self.inner.find_idempotent(owner, key))
