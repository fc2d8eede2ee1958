"""Pure ASGI middleware: HTTP metrics and one server span per request, in one layer.

It is a plain `__init__(app, ...)` / `async __call__` class: Starlette's
`BaseHTTPMiddleware` runs every request through an extra task and memory
stream and cost ~60 % of the throughput of a bare endpoint where this costs
nothing measurable.

Labels stay bounded: the route is the template the request matched
(`/v1/sessions/{session_id}`, never the session id) or `names.UNMATCHED_ROUTE`;
the role is the one the business layer reported through the observer hooks for
this request (see `metrics.RequestLabels`), or a name a route handler stored
under `ROLE_STATE_KEY` in the request state (`request.state.rolescope_role`),
checked against the loaded role names by `ServiceMetrics.role_label`.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rolescope.exporters import names
from rolescope.exporters.metrics import REQUEST_LABELS, RequestLabels, ServiceMetrics
from rolescope.service.ws_frames import TURN_RECORDER_STATE_KEY

ROLE_STATE_KEY: Final = "rolescope_role"
# Scraping and probes are neither traced nor worth a span each (Prometheus scrapes every few seconds).
UNTRACED_PATHS: Final = frozenset({"/metrics", "/healthz", "/readyz"})
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_CLASSES: Final = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")


def status_class(status: int) -> str:
    return _STATUS_CLASSES[status // 100] if 100 <= status < 600 else "5xx"


class RouteTemplates:
    """Maps a request path to the route template that will serve it, before the router runs.

    The in-flight gauge needs the label when the request starts, before Starlette's
    router has matched. Static paths are one dict lookup; templated ones one regex each.
    """

    def __init__(self, routes: Iterable[Any]) -> None:
        self._static: dict[str, str] = {}
        self._patterns: list[tuple[re.Pattern[str], str]] = []
        for route in _flatten(routes):
            path, pattern = getattr(route, "path", None), getattr(route, "path_regex", None)
            if not isinstance(path, str) or pattern is None:
                continue
            if "{" in path or not hasattr(route, "endpoint"):  # templated route or Mount
                self._patterns.append((pattern, path or "/"))
            else:
                self._static.setdefault(path, path)

    def resolve(self, path: str) -> str:
        found = self._static.get(path)
        if found is not None:
            return found
        for pattern, template in self._patterns:
            if pattern.match(path):
                return template
        return names.UNMATCHED_ROUTE


def _flatten(routes: Iterable[Any]) -> Iterator[Any]:
    """Routes with their included routers expanded (FastAPI keeps `include_router` as one entry)."""
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if callable(candidates):
            yield from _flatten(candidates())
        else:
            yield route


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root = scope.get("root_path", "")
    return path[len(root):] or "/" if root and path.startswith(root) else path


class _HeaderGetter:
    """Reads trace-context headers straight from the ASGI header list."""

    @staticmethod
    def get(carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return [value] if value is not None else None

    @staticmethod
    def keys(carrier: dict[str, str]) -> list[str]:
        return list(carrier)


def _incoming_context(scope: Scope) -> otel_context.Context | None:
    carrier = {
        key.decode("latin-1"): value.decode("latin-1")
        for key, value in scope["headers"]
        if key in (b"traceparent", b"tracestate", b"baggage")
    }
    return propagate.extract(carrier, getter=_HeaderGetter()) if carrier else None  # type: ignore[arg-type]


def _random_span(parent: otel_context.Context | None) -> trace.Span:
    """A non-recording span with a fresh trace id (or the caller's): ids for logs and replies only."""
    incoming = trace.get_current_span(parent).get_span_context() if parent is not None else None
    if incoming is not None and incoming.is_valid:
        trace_id = incoming.trace_id
    else:
        trace_id = random.getrandbits(128) or 1
    span_id = random.getrandbits(64) or 1
    return NonRecordingSpan(SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(0)))


class TelemetryMiddleware:
    """One pure ASGI layer for HTTP metrics and the request's SERVER span.

    Metrics: every request counted and timed by route template, method, status class
    and role, and the in-flight gauge. Spans: one SERVER span per request except
    scrapes and probes, current while the app runs. With `tracer_provider=None`
    nothing is exported: each request still gets a trace id (the caller's, from
    `traceparent`, or a fresh one) so replies and log lines agree.

    One layer rather than two: one extra coroutine frame, one `send` wrapper and one
    status capture per request. `metrics=None` or `spans=False` leaves a part out.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: ServiceMetrics | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        *,
        spans: bool = True,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self._spans = spans
        self._tracer = tracer_provider.get_tracer(__name__) if tracer_provider is not None else None
        self._templates: RouteTemplates | None = None

    def _resolve(self, scope: Scope) -> str:
        if self._templates is None:
            router = getattr(scope.get("app"), "router", None)
            self._templates = RouteTemplates(getattr(router, "routes", ()))
        return self._templates.resolve(_route_path(scope))

    def _start_span(self, scope: Scope) -> tuple[trace.Span, object]:
        parent = _incoming_context(scope)
        if self._tracer is None:
            span = _random_span(parent)
        else:
            # With rolescope's provider an unsampled request never reaches the SDK here.
            span = self._tracer.start_span(scope["method"], context=parent, kind=SpanKind.SERVER)
        return span, otel_context.attach(trace.set_span_in_context(span, parent))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and self.metrics is not None:
            await self._websocket(scope, receive, send, self.metrics)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = self.metrics
        traced = self._spans and scope["path"] not in UNTRACED_PATHS
        if metrics is None and not traced:
            await self.app(scope, receive, send)
            return
        span: trace.Span | None = None
        span_token: object = None
        if traced:
            span, span_token = self._start_span(scope)
        recording = span is not None and span.is_recording()
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if metrics is not None:
            route = self._resolve(scope)
            labels = RequestLabels()
            labels_token = REQUEST_LABELS.set(labels)
            in_flight = metrics.in_flight(route)
            in_flight.inc()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_status)
        except Exception as exc:
            if recording and span is not None:
                span.record_exception(exc)
            raise
        finally:
            elapsed = time.perf_counter() - started
            # No response started means the app raised: the server answers 500.
            status = status or 500
            if metrics is not None:
                in_flight.dec()
                REQUEST_LABELS.reset(labels_token)
                state = scope.get("state")
                raw_role = (state.get(ROLE_STATE_KEY) if state else None) or labels.role
                role = metrics.role_label(raw_role)
                version = metrics.version_label(raw_role, labels.role_version)
                method = scope["method"] if scope["method"] in _METHODS else "OTHER"
                context = span.get_span_context() if span is not None else None
                if labels.failed_status is not None and 200 <= status < 300:
                    status = labels.failed_status
                metrics.observe_http(route, method, status_class(status), role, elapsed, context, version)
            if span is not None:
                if recording:
                    _describe(span, scope, status)
                otel_context.detach(span_token)  # type: ignore[arg-type]
                span.end()


    async def _websocket(self, scope: Scope, receive: Receive, send: Send, metrics: ServiceMetrics) -> None:
        """A chat WebSocket: the open-connections gauge, and each turn counted as one `ws` request.

        No span per connection (it may stay open for hours): each turn's `chat` span is its own trace.
        """
        def record_turn(role: str | None, status: int, seconds: float) -> None:
            metrics.observe_http(
                names.WEBSOCKET_ROUTE, names.WEBSOCKET_METHOD, status_class(status), metrics.role_label(role),
                seconds, trace.INVALID_SPAN_CONTEXT,
            )

        scope.setdefault("state", {})[TURN_RECORDER_STATE_KEY] = record_turn
        accepted = False

        async def send_and_count(message: Message) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept" and not accepted:
                accepted = True
                metrics.websocket_connections.inc()
            await send(message)

        try:
            await self.app(scope, receive, send_and_count)
        finally:
            if accepted:
                metrics.websocket_connections.dec()


def _describe(span: trace.Span, scope: Scope, status: int) -> None:
    """Name and HTTP attributes of a recorded server span, once the router has matched."""
    route = getattr(scope.get("route"), "path", None) or names.UNMATCHED_ROUTE
    span.update_name(f"{scope['method']} {route}")
    span.set_attributes({
        "http.request.method": scope["method"],
        "url.path": scope["path"],
        "url.scheme": scope.get("scheme", "http"),
        "http.route": route,
        "http.response.status_code": status,
    })
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


class MetricsMiddleware(TelemetryMiddleware):
    """HTTP metrics only (as a layer of its own, e.g. under another span middleware)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        super().__init__(app, metrics, spans=False)


class ServerSpanMiddleware(TelemetryMiddleware):
    """The server span only."""

    def __init__(self, app: ASGIApp, tracer_provider: trace.TracerProvider | None = None) -> None:
        super().__init__(app, None, tracer_provider)
