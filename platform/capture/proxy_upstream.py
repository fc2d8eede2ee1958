"""Connections to the upstream: a keep-alive pool of plain asyncio connections, one reply at a time each.

Why not an HTTP client library: a streamed reply arrives as many small reads
(one SSE event each), and each read through httpx, httpcore and anyio cost
about 150 µs of CPU, as much as the role service spent producing it. Here a
read is parsed by httptools (C) and handed on in the same callback: the bytes
as they came, framing and all, for the client, and the decoded body pieces for
the capture reader only when someone reads them.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Literal, Protocol

import httptools

from rolescope.capture.proxy_http import RawHeaders

# How a reply's body ends: no body, after Content-Length bytes, at the last chunk, or at the close.
Framing = Literal["none", "length", "chunked", "close"]


class ReplySink(Protocol):
    """Who a reply is for: the exchange under way on this connection."""

    def head(self, status: int, reason: bytes, headers: RawHeaders, framing: Framing) -> bool:
        """The reply's head; returns whether the decoded body pieces are wanted."""

    def received(self, raw: bytes, pieces: list[bytes], complete: bool) -> None:
        """One read: its body bytes as they came (`raw`), decoded (`pieces`, if wanted), whether it ended."""

    def lost(self, error: Exception | None, head_seen: bool) -> None:
        """The connection ended, or sent what is not HTTP, before the reply did."""


class UpstreamConnection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.keep_alive = False
        self.last_read = 0.0
        self._sink: ReplySink | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._no_body = False
        self._head_seen = False
        self._complete = False
        self._collect = False
        self._framing: Framing = "none"
        self._before_body = b""  # the bytes of this reply until its head has ended
        self._scan = 0
        self._reason = b""
        self._headers: RawHeaders = []
        self._pieces: list[bytes] = []
        self._writable: asyncio.Future[None] | None = None

    def begin(self, sink: ReplySink, *, no_body: bool) -> None:
        """Expect the reply to a request about to be written (`no_body`: to a HEAD request)."""
        self._sink = sink
        self._parser = httptools.HttpResponseParser(self)
        self._no_body = no_body
        self._head_seen = self._complete = self._collect = False
        self._before_body, self._scan, self._reason, self._headers = b"", 0, b"", []
        self.last_read = time.monotonic()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    async def drain(self) -> None:
        if self._writable is not None:
            await self._writable

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def abort(self) -> None:
        self._sink = None
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # asyncio's callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.last_read = time.monotonic()
        sink, parser = self._sink, self._parser
        if sink is None or parser is None:
            self.abort()  # bytes nobody asked for: this connection can no longer be trusted
            return
        head_seen = self._head_seen
        if not head_seen:
            self._before_body += data
        pieces: list[bytes] = []
        self._pieces = pieces
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._sink = None
            self.abort()
            sink.lost(exc, self._head_seen)
            return
        if not self._head_seen:
            return
        if head_seen:
            raw = data
        else:
            raw = b"" if self._framing == "none" else self._before_body[self._scan :]
            self._before_body = b""
        complete = self._complete
        if complete:
            self._sink = None
        sink.received(raw, pieces, complete)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        sink, self._sink = self._sink, None
        if sink is None:
            return
        if self._head_seen and self._framing == "close" and exc is None:
            sink.received(b"", [], True)
        else:
            sink.lost(exc, self._head_seen)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # httptools' callbacks

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None and self._sink is not None
        status = self._parser.get_status_code()
        end = self._before_body.find(b"\r\n\r\n", self._scan) + 4
        self._scan = end
        if status < 200:  # an interim reply (103 Early Hints) is not relayed; the final one follows
            self._reason, self._headers = b"", []
            return
        self._head_seen = True
        self.keep_alive = self._parser.should_keep_alive()
        self._framing = _framing(self._headers, self._no_body or status in (204, 304))
        self._collect = self._sink.head(status, self._reason, self._headers, self._framing)
        if self._framing == "none":
            self._complete = True

    def on_body(self, body: bytes) -> None:
        if self._collect:
            self._pieces.append(body)

    def on_message_complete(self) -> None:
        if self._head_seen:
            self._complete = True


def _framing(headers: RawHeaders, no_body: bool) -> Framing:
    if no_body:
        return "none"
    framing: Framing = "close"
    for name, value in headers:
        lower = name.lower()
        if lower == b"transfer-encoding" and b"chunked" in value.lower():
            return "chunked"
        if lower == b"content-length":
            framing = "length"
    return framing


class UpstreamPool:
    """Idle keep-alive connections to one upstream, and new ones when none is idle."""

    def __init__(
        self, host: str, port: int, tls: ssl.SSLContext | None, connect_timeout_s: float, max_idle: int = 200
    ) -> None:
        self._host = host
        self._port = port
        self._tls = tls
        self._connect_timeout_s = connect_timeout_s
        self._max_idle = max_idle
        self._idle: list[UpstreamConnection] = []

    async def open(self) -> tuple[UpstreamConnection, bool]:
        """A connection and whether it was used before (a reused one may have been closed meanwhile)."""
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection, True
        loop = asyncio.get_running_loop()
        _, connection = await asyncio.wait_for(
            loop.create_connection(
                UpstreamConnection,
                self._host,
                self._port,
                ssl=self._tls,
                server_hostname=self._host if self._tls is not None else None,
            ),
            self._connect_timeout_s,
        )
        return connection, False

    def release(self, connection: UpstreamConnection) -> None:
        if connection.closed or len(self._idle) >= self._max_idle:
            connection.close()
        else:
            self._idle.append(connection)

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()
