"""Admission control: a bounded number of requests in flight, the rest refused at once.

A pure ASGI middleware rather than a semaphore in a route: a request beyond the
limit is answered with 503 and `Retry-After` before any routing, body reading or
inference happens, so the refusal costs microseconds and nothing queues without
bound (uvicorn would otherwise accept every connection and let latency grow for
everyone). A streaming reply holds its slot until the stream ends, because the
inference work is what the limit protects.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from rolescope.service.errors import error_body

# Only the expensive work (chat and chat completions) is limited; probes and scraping must answer
# while the service is saturated, which is when they matter most.
LIMITED_PREFIXES: tuple[str, ...] = ("/v1/chat",)
REASON_OVERLOAD = "overload"

RejectHook = Callable[[str], None]


class AdmissionLimiter:
    """Counts requests in flight; `try_acquire` never waits."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"concurrency_limit must be at least 1, got {limit}")
        self.limit = limit
        self.in_flight = 0
        self.rejected = 0

    def try_acquire(self) -> bool:
        # Single event loop: the check and the increment cannot interleave with another request.
        if self.in_flight >= self.limit:
            self.rejected += 1
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight -= 1


class AdmissionMiddleware:
    """Refuses requests beyond `limit` with 503 JSON and `Retry-After`; never queues. 0 = no limit."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        retry_after_s: int = 1,
        on_reject: RejectHook | None = None,
        limited_prefixes: tuple[str, ...] = LIMITED_PREFIXES,
        limiter: AdmissionLimiter | None = None,
    ) -> None:
        self.app = app
        self.enabled = limit > 0
        # Shared with WebSocket turns when given, so one limit covers every chat in flight.
        self.limiter = limiter or AdmissionLimiter(max(1, limit))
        self.retry_after_s = max(1, int(retry_after_s))
        self.on_reject = on_reject
        self.limited_prefixes = limited_prefixes
        message = (
            f"the service is at its limit of {limit} requests in flight; retry after {self.retry_after_s} s"
        )
        self._body = json.dumps(error_body("overloaded", message)).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            not self.enabled
            or scope["type"] != "http"
            or not scope.get("path", "").startswith(self.limited_prefixes)
        ):
            await self.app(scope, receive, send)
            return
        if not self.limiter.try_acquire():
            await self._reject(send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.limiter.release()

    async def _reject(self, send: Send) -> None:
        if self.on_reject is not None:
            # Counting a refusal must never turn it into a 500.
            with contextlib.suppress(Exception):
                self.on_reject(REASON_OVERLOAD)
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(self._body)).encode()),
                    (b"retry-after", str(self.retry_after_s).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self._body})
