"""The SSE response on a real uvicorn: each event written when produced, pings, disconnects, drain."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from rolescope.service.shutdown import DrainSignal, drain_aware
from rolescope.service.sse import sse_event, token_event
from rolescope.service.sse_response import EventStreamResponse


def app_streaming(
    make_events: Callable[[], AsyncIterator[bytes]], drain: DrainSignal, ping_s: float = 15
) -> Starlette:
    async def endpoint(request: Request) -> EventStreamResponse:
        events = drain_aware(make_events(), drain, lambda: sse_event("bye", "error"))
        return EventStreamResponse(events, drain, headers={"Cache-Control": "no-cache"}, ping_s=ping_s)

    return Starlette(routes=[Route("/stream", endpoint)])


@pytest.mark.parametrize("text", ["plain", "é and 😀", 'quote " and \\ back', "two\nlines", "\u2028", ""])
def test_a_token_event_is_the_json_event_byte_for_byte(text: str) -> None:
    for index in (0, 9, 12345):
        assert token_event(text, index) == sse_event(json.dumps({"text": text, "index": index}), "token")


def test_multi_line_data_becomes_one_data_line_each() -> None:
    assert sse_event("a\nb\r\nc", "x\n") == b"event: x\r\ndata: a\r\ndata: b\r\ndata: c\r\n\r\n"


def test_each_event_reaches_the_client_before_the_next_is_produced(asgi_server: Any) -> None:
    async def events() -> AsyncIterator[bytes]:
        for index in range(3):
            yield token_event(f"t{index}", index)
            await asyncio.sleep(0.5)

    server = asgi_server(app_streaming(events, DrainSignal()))
    arrivals: list[float] = []
    with httpx.stream("GET", f"{server.url}/stream", timeout=10) as response:
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        for line in response.iter_lines():
            if line.startswith("data:"):
                arrivals.append(time.monotonic())
    assert len(arrivals) == 3
    # Written as produced: the gaps between arrivals are the producer's own 0.5 s pauses.
    assert all(later - earlier > 0.25 for earlier, later in itertools.pairwise(arrivals))


def test_a_quiet_stream_sends_keep_alive_comments(asgi_server: Any) -> None:
    async def events() -> AsyncIterator[bytes]:
        await asyncio.sleep(0.8)
        yield sse_event("late", "done")

    server = asgi_server(app_streaming(events, DrainSignal(), ping_s=0.2))
    body = httpx.get(f"{server.url}/stream", timeout=10).text
    assert body.count(": ping - ") >= 2
    assert body.endswith("event: done\r\ndata: late\r\n\r\n")


def test_a_client_that_goes_away_ends_the_stream_and_its_cleanup_runs(asgi_server: Any) -> None:
    cleaned = threading.Event()

    async def events() -> AsyncIterator[bytes]:
        try:
            for index in range(1000):
                yield token_event("t", index)
                await asyncio.sleep(0.05)
        finally:
            cleaned.set()

    server = asgi_server(app_streaming(events, DrainSignal()))
    with httpx.stream("GET", f"{server.url}/stream", timeout=10) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                break
    assert cleaned.wait(timeout=5), "the event generator was not closed after the client left"


def test_draining_ends_a_long_stream_with_the_farewell_event(asgi_server: Any) -> None:
    drain = DrainSignal(grace_s=0.2, backstop_s=5)

    async def events() -> AsyncIterator[bytes]:
        for index in range(1000):
            yield token_event("t", index)
            await asyncio.sleep(0.05)

    server = asgi_server(app_streaming(events, drain))
    names: list[str] = []
    with httpx.stream("GET", f"{server.url}/stream", timeout=10) as response:
        for line in response.iter_lines():
            if line.startswith("event:"):
                names.append(line.split(":", 1)[1].strip())
                if len(names) == 2:
                    drain.begin()
    assert names[-1] == "error" and names.count("error") == 1
    assert set(names[:-1]) == {"token"} and len(names) < 100
