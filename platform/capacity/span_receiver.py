"""The service's own time to first token per request, from its spans, joined to the client's by trace id.

A small OTLP/HTTP trace receiver (protobuf, as the OpenTelemetry SDKs export by
default, or OTLP-JSON; gzip or not) keeps one figure of every span that carries
it: `gen_ai.latency.time_to_first_token`, the attribute rolescope's chat span
and vLLM's request span both set. A load sample that recorded the answer's
trace id is then joined to it, and client − server is what the request spent
outside the service's measurement: the network, queueing before the handler,
the handler's work before inference, and the load generator itself (in the
open model, also any lateness of the send). Parsing and joining are pure; the
receiver is the only I/O.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rolescope.loadtests.slis import distribution
from rolescope.rundir import RequestSample
from rolescope.service.chat import TTFT_ATTRIBUTE

TRACES_PATH = "/v1/traces"
# Spans leave the service in batches (OTEL_BSP_SCHEDULE_DELAY): how long to wait for the last ones.
SPAN_WAIT_S = 10.0
_POLL_S = 0.25


def _json_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    for key in ("doubleValue", "intValue", "stringValue"):
        if key in value:
            return value[key]
    return None


def _from_json(document: Any) -> Iterator[tuple[str, Any]]:
    for resource in document.get("resourceSpans", []) if isinstance(document, dict) else []:
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for attribute in span.get("attributes", []):
                    if attribute.get("key") == TTFT_ATTRIBUTE:
                        yield str(span.get("traceId", "")).lower(), _json_value(attribute.get("value"))


def _from_protobuf(body: bytes) -> Iterator[tuple[str, Any]]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest.FromString(body)
    for resource in request.resource_spans:
        for scope in resource.scope_spans:
            for span in scope.spans:
                for attribute in span.attributes:
                    if attribute.key == TTFT_ATTRIBUTE:
                        value = attribute.value
                        kind = value.WhichOneof("value")
                        yield span.trace_id.hex(), getattr(value, kind) if kind else None


def ttft_by_trace(body: bytes, content_type: str = "application/x-protobuf") -> dict[str, float]:
    """Trace id (32 hex digits) → seconds, for every span of the export that carries the attribute."""
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    pairs = _from_json(json.loads(body)) if "json" in content_type else _from_protobuf(body)
    found: dict[str, float] = {}
    for trace_id, value in pairs:
        try:
            found[trace_id] = float(value)
        except (TypeError, ValueError):
            continue
    return found


def trace_join(samples: Sequence[RequestSample], server_ttft: Mapping[str, float]) -> dict[str, Any]:
    """Client minus server TTFT of every answered, streamed sample whose trace id the service reported."""
    with_trace = [s for s in samples if s.ok and s.ttft_s is not None and s.trace_id]
    differences = [
        s.ttft_s - server_ttft[s.trace_id]
        for s in with_trace
        if s.ttft_s is not None and s.trace_id is not None and s.trace_id in server_ttft
    ]
    return {
        "requests_with_trace_id": len(with_trace),
        "joined": len(differences),
        "coverage": len(differences) / len(with_trace) if with_trace else None,
        "min_s": min(differences) if differences else None,
        "client_minus_server_ttft_s": distribution(differences).to_dict(),
    }


class SpanReceiver:
    """An OTLP/HTTP trace endpoint on loopback that remembers each trace's server TTFT."""

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._ttft: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                content_type = self.headers.get("Content-Type", "application/x-protobuf")
                try:
                    receiver.add(ttft_by_trace(body, content_type))
                    status = 200
                except Exception:  # a malformed export is refused; the receiver serves on
                    status = 400
                reply = b"{}" if "json" in content_type else b""
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The URL to give the service as `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{TRACES_PATH}"

    def add(self, found: Mapping[str, float]) -> None:
        with self._lock:
            self._ttft.update(found)

    def ttft(self) -> dict[str, float]:
        with self._lock:
            return dict(self._ttft)

    def join(self, samples: Sequence[RequestSample], wait_s: float = SPAN_WAIT_S) -> dict[str, Any]:
        """The join of the step's samples, once every trace has arrived or no more arrive for a while."""
        deadline = time.monotonic() + wait_s
        wanted = {s.trace_id for s in samples if s.ok and s.ttft_s is not None and s.trace_id}
        while True:
            have = self.ttft()
            if wanted <= have.keys() or time.monotonic() > deadline:
                return trace_join(samples, have)
            time.sleep(_POLL_S)

    def __enter__(self) -> SpanReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def span_receiver(enabled: bool, port: int = 0) -> contextlib.AbstractContextManager[SpanReceiver | None]:
    return SpanReceiver(port) if enabled else contextlib.nullcontext()
