"""Admission control: beyond the limit, 503 with Retry-After at once; nothing queues."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from rolescope.service.admission import AdmissionLimiter, AdmissionMiddleware


def test_limiter_refuses_beyond_the_limit_and_admits_again_after_release() -> None:
    limiter = AdmissionLimiter(2)
    assert limiter.try_acquire()
    assert limiter.try_acquire()
    assert not limiter.try_acquire()
    limiter.release()
    assert limiter.try_acquire()
    assert limiter.rejected == 1
    with pytest.raises(ValueError, match="at least 1"):
        AdmissionLimiter(0)


def make_blocking_app(release: threading.Event, entered: threading.Semaphore):  # type: ignore[no-untyped-def]
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/v1/chat/slow":
            entered.release()
            while not release.is_set():
                await asyncio.sleep(0.005)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def test_requests_beyond_the_limit_get_503_json_with_retry_after(asgi_server) -> None:  # type: ignore[no-untyped-def]
    release = threading.Event()
    entered = threading.Semaphore(0)
    reasons: list[str] = []
    middleware = AdmissionMiddleware(
        make_blocking_app(release, entered), limit=3, retry_after_s=2, on_reject=reasons.append
    )
    srv = asgi_server(middleware, lifespan="off")
    results: list[int] = []

    def slow() -> None:
        results.append(httpx.get(f"{srv.url}/v1/chat/slow", timeout=10).status_code)

    threads = [threading.Thread(target=slow) for _ in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(3):
        assert entered.acquire(timeout=10)
    try:
        refused = httpx.get(f"{srv.url}/v1/chat", timeout=10)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "2"
        assert refused.json()["error"]["code"] == "overloaded"
        assert reasons == ["overload"]
        # Probes and cheap reads answer even while chat is saturated.
        assert httpx.get(f"{srv.url}/healthz", timeout=10).status_code == 200
        assert httpx.get(f"{srv.url}/v1/roles", timeout=10).status_code == 200
    finally:
        release.set()
        for thread in threads:
            thread.join(timeout=10)
    assert results == [200, 200, 200]
    assert middleware.limiter.in_flight == 0
    assert httpx.get(f"{srv.url}/v1/chat", timeout=10).status_code == 200


def test_a_zero_limit_admits_everything(asgi_server) -> None:  # type: ignore[no-untyped-def]
    release, entered = threading.Event(), threading.Semaphore(0)
    release.set()
    srv = asgi_server(AdmissionMiddleware(make_blocking_app(release, entered), limit=0), lifespan="off")
    assert httpx.get(f"{srv.url}/v1/chat", timeout=10).status_code == 200


def test_a_failing_reject_hook_does_not_turn_the_refusal_into_an_error(asgi_server) -> None:  # type: ignore[no-untyped-def]
    def broken(reason: str) -> None:
        raise RuntimeError(reason)

    release = threading.Event()
    entered = threading.Semaphore(0)
    middleware = AdmissionMiddleware(make_blocking_app(release, entered), limit=1, on_reject=broken)
    srv = asgi_server(middleware, lifespan="off")
    holder = threading.Thread(target=lambda: httpx.get(f"{srv.url}/v1/chat/slow", timeout=10))
    holder.start()
    assert entered.acquire(timeout=10)
    try:
        assert httpx.get(f"{srv.url}/v1/chat", timeout=10).status_code == 503
    finally:
        release.set()
        holder.join(timeout=10)
