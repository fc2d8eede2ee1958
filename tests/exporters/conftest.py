"""Fixtures for the telemetry tests: a real OTLP/HTTP receiver and endpoints that fail on purpose."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    service_name: str


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


@dataclass
class OtlpReceiver:
    """An OTLP/HTTP trace receiver decoding `ExportTraceServiceRequest` with opentelemetry-proto."""

    url: str
    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: int = 0
    headers: list[dict[str, str]] = field(default_factory=list)  # per request, names in lower case
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, body: bytes, headers: dict[str, str] | None = None) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        decoded = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    decoded.append(
                        ReceivedSpan(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            kind=span.kind,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            service_name=str(resource.get("service.name")),
                        )
                    )
        with self.lock:
            self.requests += 1
            self.spans.extend(decoded)
            self.headers.append(headers or {})

    def wait_for(
        self, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 30.0
    ) -> list[ReceivedSpan]:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                snapshot = list(self.spans)
            if predicate(snapshot) or time.monotonic() > deadline:
                return snapshot
            time.sleep(0.05)


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    holder: list[OtlpReceiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/v1/traces":
                holder[0].add(body, {k.lower(): v for k, v in self.headers.items()})
                payload = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
            else:
                payload = b""
                self.send_response(404)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder.append(OtlpReceiver(url=f"http://127.0.0.1:{server.server_address[1]}"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder[0]
    server.shutdown()
    server.server_close()


@pytest.fixture
def otlp_grpc_receiver() -> Iterator[OtlpReceiver]:
    """The same receiver over OTLP/gRPC (a real grpc server on a free loopback port)."""
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    port = server.add_insecure_port("127.0.0.1:0")
    receiver = OtlpReceiver(url=f"http://127.0.0.1:{port}")

    class Service(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
        def Export(self, request: ExportTraceServiceRequest, context: Any) -> ExportTraceServiceResponse:
            metadata = {key.lower(): str(value) for key, value in context.invocation_metadata()}
            receiver.add(request.SerializeToString(), metadata)
            return ExportTraceServiceResponse()

    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), server)
    server.start()
    yield receiver
    server.stop(grace=None)


@pytest.fixture
def refusing_endpoint() -> str:
    """A loopback URL where nothing listens: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def black_hole_endpoint() -> Iterator[str]:
    """A loopback URL that accepts connections and never answers (a hung collector)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    for connection in accepted:
        connection.close()
    listener.close()


def write_fast_role(folder: Path) -> Path:
    """The bundled sherlock role with a near-instant simulator, so tests measure telemetry, not waiting."""
    from rolescope.settings import bundled_roles_path

    role = yaml.safe_load((bundled_roles_path() / "sherlock.yaml").read_text())
    role["inference"]["simulator"].update({"ttft_ms": 1, "tokens_per_second": 100_000, "jitter": 0})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sherlock.yaml"
    path.write_text(yaml.safe_dump(role))
    return path


@pytest.fixture
def fast_role(tmp_path: Path) -> Path:
    return write_fast_role(tmp_path / "roles")
