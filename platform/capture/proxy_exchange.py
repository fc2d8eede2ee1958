"""One request relayed to the upstream and its reply relayed back, byte for byte, as the bytes come.

Each read from the upstream is written to the client in one write, framing
and all (a chunked reply stays chunked, chunk for chunk), and only after that
write is the decoded copy fed to the capture reader, so reading a reply never
delays it. The exchange ends in one of four ways: the reply ended, the
upstream broke it off (the client's connection is closed so a truncated
stream never looks complete), the client left (the upstream connection is
dropped), or there was no reply at all (the proxy's own 502 or 504).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Literal

from rolescope.capture.protocols.base import ChatProtocol, DecodingReader, ReplyReader, Unreadable
from rolescope.capture.proxy_client import ClientConnection, ClientRequest
from rolescope.capture.proxy_http import (
    RawHeaders,
    error_response,
    header_value,
    response_headers,
    status_line,
)
from rolescope.capture.proxy_http import head_bytes as make_head
from rolescope.capture.proxy_stats import ProxyStats
from rolescope.capture.proxy_upstream import Framing, UpstreamConnection, UpstreamPool

logger = logging.getLogger("rolescope.capture")

Outcome = Literal["done", "broken", "gone", "failed", "retry"]


class ReplyCapture:
    """What an exchange under capture learns from the reply (the protocol's reader chooses what to read)."""

    __slots__ = ("first_byte_s", "protocol", "reader", "started", "status", "stream")

    def __init__(self, protocol: ChatProtocol, started: float) -> None:
        self.protocol = protocol
        self.started = started
        self.reader: ReplyReader | None = None
        self.first_byte_s: float | None = None
        self.status = 0
        self.stream = False

    def open(self, status: int, headers: RawHeaders) -> ReplyReader:
        self.status = status
        self.stream = "text/event-stream" in (header_value(headers, b"content-type") or "")
        reader: ReplyReader = self.protocol.reply_reader(self.stream)
        encoding = (header_value(headers, b"content-encoding") or "").strip().lower()
        if encoding and encoding != "identity":
            reader = DecodingReader(reader, encoding) if DecodingReader.supports(encoding) else Unreadable()
        self.reader = reader
        return reader


class Exchange:
    def __init__(
        self,
        client: ClientConnection,
        request: ClientRequest,
        pool: UpstreamPool,
        head: bytes,
        chunked_body: bool,
        capture: ReplyCapture | None,
        stats: ProxyStats,
        upstream_name: str,
        read_timeout_s: float,
    ) -> None:
        self._client = client
        self._request = request
        self._pool = pool
        self._head = head
        self._capture = capture
        self._stats = stats
        self._upstream_name = upstream_name
        self._read_timeout_s = read_timeout_s
        self._chunked_body = chunked_body  # the body goes on in chunks (its length is not known yet)
        self._connection: UpstreamConnection | None = None
        self._done: asyncio.Future[Outcome] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._pending: bytes | None = None  # the reply's head, written with the first body bytes
        self._reader: ReplyReader | None = None
        self._dechunk = False
        self._close_after = False
        self._backed_up = False
        self._body_sent = False
        self.status = 0

    async def run(self) -> bool:
        """Relay it; returns whether the client's connection may carry another request."""
        self._client.active = self
        try:
            outcome = await self._attempt(replay=self._request.complete)
            if outcome == "retry":  # a kept-alive connection the upstream had closed meanwhile
                outcome = await self._attempt(replay=True)
        finally:
            self._client.active = None
        return (
            outcome in ("done", "failed")
            and not self._close_after
            and self._request.keep_alive
            and self._request.complete
            and not self._client.gone
        )

    async def _attempt(self, replay: bool) -> Outcome:
        try:
            connection, reused = await self._pool.open()
        except TimeoutError:
            self._stats.upstream_timeouts += 1
            return self._timed_out()
        except (OSError, ssl.SSLError) as exc:
            return self._unreachable(f"cannot reach the upstream {self._upstream_name}: {exc}")
        if self._client.gone:
            self._pool.release(connection)
            return "gone"
        loop = asyncio.get_running_loop()
        self._connection = connection
        self._done = loop.create_future()
        self._body_sent = False
        connection.begin(self, no_body=self._request.method == "HEAD")
        first = self._request.take() if replay else b""
        connection.write(self._head + self._framed(first))
        self._timer = loop.call_later(self._read_timeout_s, self._check_silence)
        if not self._request.complete:
            await self._send_body(connection)
        self._body_sent = self._request.complete
        outcome = await self._done
        if outcome == "retry" and not (reused and replay):
            return self._unreachable(
                f"the upstream {self._upstream_name} closed the connection without a reply"
            )
        if outcome == "retry":
            self._request.parts.insert(0, first)
        return outcome

    def _framed(self, body: bytes) -> bytes:
        if not self._chunked_body:
            return body
        framed = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
        return framed + b"0\r\n\r\n" if self._request.complete and not self._request.parts else framed

    async def _send_body(self, connection: UpstreamConnection) -> None:
        assert self._done is not None
        while not self._request.complete and not self._done.done() and not self._client.gone:
            await self._request.more()
            connection.write(self._framed(self._request.take()))
            await connection.drain()

    def _unreachable(self, message: str) -> Outcome:
        self._stats.upstream_unreachable += 1
        self.status = 502
        self._client.write(error_response(502, "upstream_unreachable", message))
        return "failed"

    def _timed_out(self) -> Outcome:
        self._stats.upstream_timeouts += 1
        self.status = 504
        self._client.write(
            error_response(
                504, "upstream_timeout", f"the upstream {self._upstream_name} did not answer in time"
            )
        )
        return "failed"

    # the upstream connection's callbacks (ReplySink)

    def head(self, status: int, reason: bytes, headers: RawHeaders, framing: Framing) -> bool:
        self.status = status
        request = self._request
        out = response_headers(headers)
        if framing == "chunked":
            if request.http_10:
                self._dechunk = self._close_after = True  # an HTTP/1.0 client cannot read chunks
            else:
                out.append((b"transfer-encoding", b"chunked"))
        elif framing == "close":
            self._close_after = True
        if self._close_after or not request.keep_alive or self._client.closing:
            self._close_after = True
            out.append((b"connection", b"close"))
        self._pending = make_head(status_line(status, reason), out)
        if self._capture is not None:
            self._reader = self._capture.open(status, headers)
        return self._reader is not None or self._dechunk

    def received(self, raw: bytes, pieces: list[bytes], complete: bool) -> None:
        out = b"".join(pieces) if self._dechunk else raw
        if self._pending is not None:
            out, self._pending = self._pending + out, None
        if out:
            self._client.write(out)
        reader = self._reader
        if reader is not None and pieces:
            capture = self._capture
            if capture is not None and capture.first_byte_s is None:
                capture.first_byte_s = time.perf_counter() - capture.started
            try:
                for piece in pieces:
                    reader.feed(piece)
            except Exception:  # reading for the record must never break the relay: stop reading instead
                logger.debug("could not read a reply for capture", exc_info=True)
                self._reader = None
        if complete:
            self._end("done")

    def lost(self, error: Exception | None, head_seen: bool) -> None:
        if not head_seen:
            self._end("retry")
            return
        self._stats.upstream_broken += 1
        logger.warning("the upstream broke off a %s reply: %s", self.status, error or "connection closed")
        if self._pending is not None:
            self._client.write(self._pending)
        self._client.close()
        self._end("broken")

    # the client connection's callbacks (ActiveExchange)

    def client_backed_up(self, backed_up: bool) -> None:
        self._backed_up = backed_up
        if self._connection is not None:
            if backed_up:
                self._connection.pause_reading()
            else:
                self._connection.last_read = time.monotonic()
                self._connection.resume_reading()

    def client_left(self) -> None:
        if self._done is not None and not self._done.done():
            self._stats.client_gone += 1
            self._end("gone")
        self._request.wake()

    # endings

    def _check_silence(self) -> None:
        connection, done = self._connection, self._done
        if connection is None or done is None or done.done():
            return
        silent = time.monotonic() - connection.last_read
        if self._backed_up or silent < self._read_timeout_s:
            delay = self._read_timeout_s - (0.0 if self._backed_up else silent)
            self._timer = asyncio.get_running_loop().call_later(delay, self._check_silence)
            return
        if self.status == 0:
            connection.abort()
            self._end(self._timed_out())
        else:
            connection.abort()
            self.lost(TimeoutError(f"no bytes for {self._read_timeout_s:g} s"), head_seen=True)

    def _end(self, outcome: Outcome) -> None:
        done = self._done
        if done is None or done.done():
            return
        if self._timer is not None:
            self._timer.cancel()
        connection = self._connection
        if connection is not None:
            if outcome == "done" and connection.keep_alive and self._body_sent_by_now():
                self._pool.release(connection)
            else:
                connection.abort()
        done.set_result(outcome)
        self._request.wake()

    def _body_sent_by_now(self) -> bool:
        return self._body_sent or (self._request.complete and not self._request.parts)
