"""The capturing reverse proxy's decisions: which requests are chat exchanges, what is captured of them.

A request to a chat route one of the protocols knows is read whole (it is a
small JSON body the upstream needs whole anyway) before it is forwarded, and
its reply is relayed as the upstream sends it while a copy is read for the
output tokens (`proxy_exchange`). Only after the reply has ended is a summary
handed to the capture sink, whose thread redacts and writes it; the request
path never waits for the sink. Any other request is relayed the same way,
its body as it arrives, and not read.

The proxy answers by itself only when there is no upstream answer to relay: 502
when the upstream cannot be reached, 504 when it does not answer in time. An
upstream status, error or not, reaches the client as the upstream sent it.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_to_bytes

from rolescope.capture.observer import CaptureObserver
from rolescope.capture.protocols.base import ChatProtocol, HttpRequestView, RequestFacts
from rolescope.capture.proxy_client import ClientConnection, ClientRequest
from rolescope.capture.proxy_exchange import Exchange, ReplyCapture
from rolescope.capture.proxy_http import head_bytes, request_headers
from rolescope.capture.proxy_stats import Progress, ProxyStats
from rolescope.capture.proxy_upstream import UpstreamPool
from rolescope.service.observer import ExchangeSummary

logger = logging.getLogger("rolescope.capture")

# A chat request larger than this is relayed as a stream and not captured.
MAX_CAPTURED_REQUEST_BYTES = 256 * 1024
UNKNOWN_ROLE = "unknown"


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where requests go: `host_header` is what `Host` says there, `prefix` the base URL's path."""

    name: str
    host_header: bytes
    prefix: bytes


@dataclass(slots=True)
class _Capture:
    """One chat exchange under way."""

    protocol: ChatProtocol
    facts: RequestFacts
    arrival_unix: float
    reply: ReplyCapture


class CaptureProxy:
    def __init__(
        self,
        upstream: Upstream,
        pool: UpstreamPool,
        protocols: Sequence[ChatProtocol],
        capture: CaptureObserver,
        stats: ProxyStats,
        progress: Progress,
        read_timeout_s: float,
    ) -> None:
        self._upstream = upstream
        self._pool = pool
        self._protocols = tuple(protocols)
        self._capture = capture
        self._stats = stats
        self._progress = progress
        self._read_timeout_s = read_timeout_s

    async def handle(self, client: ClientConnection, request: ClientRequest) -> bool:
        """Relay one request and its reply; returns whether the client's connection may carry another."""
        self._stats.requests += 1
        arrival_unix = time.time()
        started = time.perf_counter()
        raw_path, _, query = request.target.partition(b"?")
        path = unquote_to_bytes(raw_path).decode("utf-8", "replace")
        protocol = next((p for p in self._protocols if p.handles(request.method, path)), None)
        capture: _Capture | None = None
        if protocol is not None:
            await request.until(MAX_CAPTURED_REQUEST_BYTES)
            if request.complete:
                capture = self._begin(protocol, request, path, query, arrival_unix, started)
        if client.gone:
            return False
        chunked_body = request.chunked and not request.complete
        exchange = Exchange(
            client,
            request,
            self._pool,
            self._request_head(client, request, chunked_body),
            chunked_body,
            capture.reply if capture is not None else None,
            self._stats,
            self._upstream.name,
            self._read_timeout_s,
        )
        keep: bool = await exchange.run()
        self._finish(capture, exchange.status, started)
        return keep

    def _request_head(self, client: ClientConnection, request: ClientRequest, chunked_body: bool) -> bytes:
        headers = request_headers(request.headers, client.peer_host)
        if request.chunked and not chunked_body:  # the whole body is here: say its length instead
            headers.append((b"content-length", str(request.size).encode()))
        elif chunked_body:
            headers.append((b"transfer-encoding", b"chunked"))
        first = b"%s %s%s HTTP/1.1\r\n" % (request.method.encode(), self._upstream.prefix, request.target)
        return head_bytes(first, [(b"host", self._upstream.host_header), *headers])

    def _begin(
        self,
        protocol: ChatProtocol,
        request: ClientRequest,
        path: str,
        query: bytes,
        arrival_unix: float,
        started: float,
    ) -> _Capture | None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in request.headers}
        view = HttpRequestView(
            request.method,
            path,
            dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)),
            headers,
            b"".join(request.parts),
        )
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
        reply = ReplyCapture(protocol, started)
        reply.stream = facts.stream
        return _Capture(protocol, facts, arrival_unix, reply)

    def _finish(self, capture: _Capture | None, status: int, started: float) -> None:
        if capture is None:
            return
        if status == 0:  # the client left before any reply: there is nothing to record
            self._progress.exchange_done()
            return
        try:
            self._record(capture, status, time.perf_counter() - started)
        except Exception:  # capture must never break the relay
            logger.debug("could not record a capture", exc_info=True)
        self._progress.exchange_done()

    def _record(self, capture: _Capture, status: int, latency_s: float) -> None:
        reader = capture.reply.reader
        reply = reader.finish() if reader is not None else None
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
                stream=capture.reply.stream,
                status=status,
                latency_s=latency_s,
                ttft_s=capture.reply.first_byte_s,
                output_tokens=reply.output_tokens if reply else 0,
                max_tokens=facts.max_tokens,
            )
        )
