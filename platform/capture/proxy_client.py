"""The client side of the capturing proxy: one asyncio protocol per client connection, parsed by httptools.

Requests on a connection are relayed one after another (pipelined ones wait
their turn); a request's body is kept as it arrives until the relay takes it,
and the connection stops reading while more than a megabyte waits. The
connection tells the exchange under way when the client's socket backs up
(so it stops reading from the upstream) and when the client has gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

import httptools

from rolescope.capture.proxy_http import RawHeaders, error_response

logger = logging.getLogger("rolescope.capture")

MAX_WAITING_BODY = 1024 * 1024
IDLE_TIMEOUT_S = 5.0  # as uvicorn's keep-alive default: an idle client connection is closed after it


class ClientRequest:
    """One request as its head arrived; its body comes in pieces (`parts`) until `complete`."""

    __slots__ = (
        "_connection",
        "_waiter",
        "_waiting",
        "chunked",
        "complete",
        "headers",
        "http_10",
        "keep_alive",
        "method",
        "parts",
        "size",
        "target",
    )  # fmt: skip

    def __init__(
        self, connection: ClientConnection, method: str, target: bytes, headers: RawHeaders, keep_alive: bool
    ) -> None:
        self.method = method
        self.target = target  # path and query, as sent
        self.headers = headers
        self.keep_alive = keep_alive
        self.http_10 = False
        self.chunked = any(n.lower() == b"transfer-encoding" for n, _ in headers)
        self.parts: list[bytes] = []
        self.size = 0
        self.complete = False
        self._connection = connection
        self._waiter: asyncio.Future[None] | None = None
        self._waiting = 0

    def add(self, piece: bytes) -> None:
        self.parts.append(piece)
        self.size += len(piece)
        self._waiting += len(piece)
        if self._waiting > MAX_WAITING_BODY:
            self._connection.hold_reading(True)
        self.wake()

    def finish(self) -> None:
        self.complete = True
        self.wake()

    def wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def take(self) -> bytes:
        """The body that arrived since the last `take`."""
        taken = b"".join(self.parts)
        self.parts.clear()
        self._waiting = 0
        self._connection.hold_reading(False)
        return taken

    async def more(self) -> None:
        """Until more body arrives, it is complete, or the client has gone."""
        if self.parts or self.complete or self._connection.gone:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        await self._waiter
        self._waiter = None

    async def until(self, size: int) -> None:
        """Until the body is complete or larger than `size` (or the client has gone)."""
        while not self.complete and self.size <= size and not self._connection.gone:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None


class ActiveExchange(Protocol):
    def client_backed_up(self, backed_up: bool) -> None: ...

    def client_left(self) -> None: ...


Handler = Callable[["ClientConnection", ClientRequest], Awaitable[bool]]


class ClientConnection(asyncio.Protocol):
    def __init__(self, handle: Handler, connections: set[ClientConnection]) -> None:
        self._handle = handle  # relays one request; returns whether the connection may take another
        self._connections = connections
        self._parser = httptools.HttpRequestParser(self)
        self._target = b""
        self._headers: RawHeaders = []
        self._parsing: ClientRequest | None = None
        self._queue: deque[ClientRequest] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._held = False
        self.transport: asyncio.Transport | None = None
        self.peer_host: str | None = None
        self.active: ActiveExchange | None = None
        self.gone = False
        self.closing = False  # the proxy is shutting down: close once the reply under way has ended

    @property
    def idle(self) -> bool:
        return self._worker is None and not self._queue

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.gone:
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def hold_reading(self, hold: bool) -> None:
        if self.transport is None or self.gone or hold == self._held:
            return
        self._held = hold
        if hold:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    # asyncio's callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer_host = peer[0] if isinstance(peer, tuple) else None
        self._connections.add(self)
        self._arm_idle_timer()

    def data_received(self, data: bytes) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(403, "upgrade_refused", "the proxy relays HTTP only (no WebSocket or other upgrade)")
        except httptools.HttpParserError:
            self._refuse(400, "bad_request", "the request is not valid HTTP/1.1")

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        self._connections.discard(self)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self.active is not None:
            self.active.client_left()
        for request in self._queue:
            request.wake()

    def pause_writing(self) -> None:
        if self.active is not None:
            self.active.client_backed_up(True)

    def resume_writing(self) -> None:
        if self.active is not None:
            self.active.client_backed_up(False)

    # httptools' callbacks

    def on_message_begin(self) -> None:
        self._target, self._headers = b"", []

    def on_url(self, url: bytes) -> None:
        self._target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        if parser.should_upgrade():
            return  # refused once the parser stops at it
        request = ClientRequest(
            self, parser.get_method().decode("ascii"), self._target, self._headers, parser.should_keep_alive()
        )
        request.http_10 = parser.get_http_version() == "1.0"
        # Not while an earlier reply is being written on this connection: it would land inside that reply.
        expects = any(n.lower() == b"expect" and v.lower() == b"100-continue" for n, v in self._headers)
        if expects and not self._queue:
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self._parsing = request
        self._queue.append(request)
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._serve())

    def on_body(self, body: bytes) -> None:
        if self._parsing is not None:
            self._parsing.add(body)

    def on_message_complete(self) -> None:
        if self._parsing is not None:
            self._parsing.finish()
            self._parsing = None

    # the relay

    async def _serve(self) -> None:
        try:
            while self._queue and not self.gone:
                try:
                    keep = await self._handle(self, self._queue[0])
                except Exception:  # a fault in one relay ends its connection, never the proxy
                    logger.exception("the relay of a request failed; its connection is closed")
                    keep = False
                self._queue.popleft()
                if not keep or self.closing:
                    self.close()
                    return
        finally:
            self._worker = None
        self._arm_idle_timer()

    def _refuse(self, status: int, code: str, message: str) -> None:
        if self.idle:
            self.write(error_response(status, code, message))
            self.close()
        elif self.transport is not None:
            self.transport.abort()

    def _arm_idle_timer(self) -> None:
        if not self.gone and self.idle:
            self._idle_timer = asyncio.get_running_loop().call_later(IDLE_TIMEOUT_S, self._idle_expired)

    def _idle_expired(self) -> None:
        if self.idle:
            self.close()


def close_idle(connections: set[ClientConnection]) -> None:
    """At shutdown: idle keep-alive connections close now, busy ones once their reply has ended."""
    for connection in list(connections):
        connection.closing = True
        if connection.idle:
            connection.close()
