"""A lean ASGI response for server-sent events: one write per event, as the event is produced.

Every event arrives already encoded (bytes) and goes out in its own `http.response.body`
message the moment the generator yields it; nothing is batched, so a client sees each
token when the backend produced it. Per event that is one `send`; per stream, one side
task that answers a client disconnect (it cancels the stream, whose generators then run
their cleanup) and sends a keep-alive comment after `ping_s` without a message from the
client, and one drain subscription for the backstop.

Draining: the event generator is expected to be wrapped by `drain_aware` (shutdown.py),
which ends it with a terminal event after the grace period. The backstop here only cuts
a stream still running at `drain.backstop_s` after the drain began (a client too slow to
take its last events), before the server's own shutdown timeout would.

sse-starlette's `EventSourceResponse` did the same with an anyio task group of four tasks
per stream, a cancel scope and an event object per send, which cost several times the
write itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from rolescope.service.shutdown import DrainSignal

MEDIA_TYPE = "text/event-stream"
# What the SSE response has always sent, in this order, after the caller's own headers.
_FIXED_HEADERS = ((b"connection", b"keep-alive"), (b"content-type", b"text/event-stream; charset=utf-8"))


def ping_comment() -> bytes:
    # A comment line: EventSource clients ignore it; proxies see traffic and keep the connection.
    return f": ping - {datetime.now(UTC)}\r\n\r\n".encode()


class EventStreamResponse(Response):
    media_type = MEDIA_TYPE

    def __init__(
        self,
        events: AsyncIterator[bytes],
        drain: DrainSignal,
        *,
        headers: Mapping[str, str],
        ping_s: float,
        status_code: int = 200,
    ) -> None:
        # Response.__init__ would render a body; a stream has none, so only what ASGI needs is set.
        self.events = events
        self.drain = drain
        self.ping_s = ping_s
        self.status_code = status_code
        self.background = None
        own = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        names = {k for k, _ in own}
        self.raw_headers = own + [(k, v) for k, v in _FIXED_HEADERS if k not in names]
        self._open = True
        self._gone = False
        self._send_lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        if scope.get("method") == "HEAD":
            # A HEAD answer has no body, and a stream would never end: headers only.
            await send(start)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            await _close(self.events)
            return
        await send(start)
        task = asyncio.current_task()
        assert task is not None  # an ASGI app always runs in a task
        side = asyncio.get_running_loop().create_task(self._watch_client(receive, send, task))
        backstop: asyncio.TimerHandle | None = None

        def arm_backstop() -> None:
            nonlocal backstop
            loop = asyncio.get_running_loop()
            began = self.drain.deadline(loop) - self.drain.grace_s
            backstop = loop.call_at(began + self.drain.backstop_s, self._cut, task)

        unsubscribe = self.drain.subscribe(arm_backstop)
        events = self.events
        try:
            async for chunk in events:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except asyncio.CancelledError:
            # Cancelled by our side task (client gone) or the backstop: the response just ends.
            if not self._gone or task.uncancel() > 0:
                raise
            return
        finally:
            unsubscribe()
            if backstop is not None:
                backstop.cancel()
            side.cancel()
            await _close(events)
        async with self._send_lock:
            self._open = False
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _cut(self, task: asyncio.Task[Any]) -> None:
        if self._open and not self._gone:
            self._gone = True
            task.cancel()

    async def _watch_client(self, receive: Receive, send: Send, stream: asyncio.Task[Any]) -> None:
        while True:
            try:
                async with asyncio.timeout(self.ping_s or None):
                    message = await receive()
            except TimeoutError:
                async with self._send_lock:
                    if self._open:
                        await send({"type": "http.response.body", "body": ping_comment(), "more_body": True})
                continue
            if message["type"] == "http.disconnect":
                self._cut(stream)
                return


async def _close(events: AsyncIterator[bytes]) -> None:
    aclose: Any = getattr(events, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
