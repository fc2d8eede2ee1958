"""The capturing reverse proxy as a raw ASGI app: every byte passes through as it comes.

A request to a chat route one of the protocols knows is read whole (it is a
small JSON body the upstream needs whole anyway), forwarded, and its reply is
relayed chunk by chunk as the upstream sends it, while a copy of each chunk is
read for the output tokens. Only after the reply has ended is a summary handed
to the capture sink, whose thread redacts and writes it; the request path never
waits for the sink. Any other request is relayed the same way and not read.

The proxy answers by itself only when there is no upstream answer to relay: 502
when the upstream cannot be reached, 504 when it does not answer in time. An
upstream status, error or not, reaches the client as the upstream sent it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

import httpx

from rolescope.capture.observer import CaptureObserver
from rolescope.capture.protocols.base import (
    ChatProtocol,
    DecodingReader,
    HttpRequestView,
    ReplyReader,
    RequestFacts,
    Unreadable,
)
from rolescope.capture.proxy_http import (
    Receive,
    Scope,
    Send,
    has_body,
    header_value,
    read_body,
    request_headers,
    response_headers,
    send_error,
    stream_body,
)
from rolescope.capture.proxy_stats import Progress, ProxyStats
from rolescope.service.observer import ExchangeSummary

logger = logging.getLogger("rolescope.capture")

# A chat request larger than this is relayed as a stream and not captured.
MAX_CAPTURED_REQUEST_BYTES = 256 * 1024
UNKNOWN_ROLE = "unknown"


class UpstreamBrokeOff(Exception):
    """The upstream broke a reply off after its status was sent: the client's connection must break too,
    or a truncated stream would look complete."""


@dataclass(slots=True)
class _Capture:
    """One chat exchange under way."""

    protocol: ChatProtocol
    facts: RequestFacts
    arrival_unix: float
    stream: bool
    reader: ReplyReader | None = None
    first_byte_s: float | None = None


class CaptureProxy:
    def __init__(
        self,
        upstream: httpx.URL,
        client: httpx.AsyncClient,
        protocols: Sequence[ChatProtocol],
        capture: CaptureObserver,
        stats: ProxyStats,
        progress: Progress,
    ) -> None:
        self._upstream = upstream
        self._prefix = upstream.raw_path.split(b"?", 1)[0].rstrip(b"/")
        self._client = client
        self._protocols = tuple(protocols)
        self._capture = capture
        self._stats = stats
        self._progress = progress

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1011, "reason": "the proxy relays HTTP only"})
            return
        self._stats.requests += 1
        arrival_unix = time.time()
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        protocol = next((p for p in self._protocols if p.handles(method, path)), None)
        capture: _Capture | None = None
        body_done = True
        content: bytes | object
        if protocol is None:
            body_done = not has_body(scope["headers"])
            content = b"" if body_done else stream_body(receive)
        else:
            body, whole = await read_body(receive, MAX_CAPTURED_REQUEST_BYTES)
            content = body if whole else stream_body(receive, body)
            body_done = whole
            if whole:
                capture = self._begin(protocol, scope, body, arrival_unix)
        client = scope.get("client")
        raw_path: bytes = scope.get("raw_path") or path.encode()
        query: bytes = scope.get("query_string", b"")
        request = self._client.build_request(
            method,
            self._upstream.copy_with(raw_path=self._prefix + raw_path + (b"?" + query if query else b"")),
            headers=request_headers(scope["headers"], client[0] if client else None),
            content=content,  # type: ignore[arg-type]
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TimeoutException:
            self._stats.upstream_timeouts += 1
            await send_error(
                send, 504, "upstream_timeout", f"the upstream {self._upstream} did not answer in time"
            )
            self._finish(capture, 504, started, 0)
            return
        except httpx.TransportError as exc:
            self._stats.upstream_unreachable += 1
            await send_error(
                send, 502, "upstream_unreachable", f"cannot reach the upstream {self._upstream}: {exc}"
            )
            self._finish(capture, 502, started, 0)
            return
        await self._relay(response, send, receive, body_done, capture, started)

    def _begin(
        self, protocol: ChatProtocol, scope: Scope, body: bytes, arrival_unix: float
    ) -> _Capture | None:
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
        }
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        view = HttpRequestView(scope["method"], scope["path"], query, headers, body)
        try:
            facts = protocol.read_request(view)
        except Exception:  # an odd request must be relayed all the same
            logger.debug("could not read a %s request for capture", protocol.name, exc_info=True)
            return None
        if facts is None:
            return None
        self._stats.exchanges += 1
        # Only a session already known and not sampled lets the reply go unread.
        if facts.session_id is not None and not self._capture.sampled(facts.session_id):
            self._progress.exchange_done()
            return None
        return _Capture(protocol, facts, arrival_unix, facts.stream)

    async def _relay(
        self,
        response: httpx.Response,
        send: Send,
        receive: Receive,
        body_done: bool,
        capture: _Capture | None,
        started: float,
    ) -> None:
        raw_headers = response.headers.raw
        if capture is not None:
            capture.stream = "text/event-stream" in (header_value(raw_headers, b"content-type") or "")
            reader: ReplyReader = capture.protocol.reply_reader(capture.stream)
            encoding = (header_value(raw_headers, b"content-encoding") or "").strip().lower()
            if encoding and encoding != "identity":
                reader = (
                    DecodingReader(reader, encoding) if DecodingReader.supports(encoding) else Unreadable()
                )
            capture.reader = reader
        # The client leaving is noticed between chunks, so an abandoned stream stops pulling from upstream.
        gone = asyncio.ensure_future(receive()) if body_done else None
        broke = False
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": response_headers(raw_headers),
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if capture is not None:
                    if capture.first_byte_s is None:
                        capture.first_byte_s = time.perf_counter() - started
                    capture.reader.feed(chunk)  # type: ignore[union-attr]
                if gone is not None and gone.done():
                    self._stats.client_gone += 1
                    break
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except httpx.TransportError as exc:
            self._stats.upstream_broken += 1
            broke = True
            logger.warning("the upstream broke off a %s reply: %s", response.status_code, exc)
        finally:
            if gone is not None:
                gone.cancel()
            await response.aclose()
            self._finish(capture, response.status_code, started, None)
        if broke:
            raise UpstreamBrokeOff

    def _finish(self, capture: _Capture | None, status: int, started: float, tokens: int | None) -> None:
        if capture is None:
            return
        try:
            self._record(capture, status, time.perf_counter() - started, tokens)
        except Exception:  # capture must never break the relay
            logger.debug("could not record a capture", exc_info=True)
        self._progress.exchange_done()

    def _record(self, capture: _Capture, status: int, latency_s: float, tokens: int | None) -> None:
        reply = capture.reader.finish() if capture.reader is not None else None
        facts = capture.facts
        # A first turn the upstream refused names no session anywhere: it is a session of its own.
        session = facts.session_id or (reply.session_id if reply else None) or f"once-{secrets.token_hex(8)}"
        if facts.session_id is None and not self._capture.sampled(session):
            return
        self._stats.sampled += 1
        self._capture.sink.offer(
            ExchangeSummary(
                arrival_unix=capture.arrival_unix,
                session_id=session,
                client_id=facts.client_id,
                role=facts.role or (reply.role if reply else None) or UNKNOWN_ROLE,
                message=facts.message,
                stream=capture.stream,
                status=status,
                latency_s=latency_s,
                ttft_s=capture.first_byte_s,
                output_tokens=tokens if tokens is not None else (reply.output_tokens if reply else 0),
                max_tokens=facts.max_tokens,
            )
        )
