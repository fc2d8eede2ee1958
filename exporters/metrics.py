"""Every metric the role service exposes, defined once, on an injectable registry.

`ServiceMetrics` owns the Prometheus objects and turns what the business layer
reports (through the `ChatObserver` hooks) into observations. Label values come
from fixed sets only — the loaded role names and versions, the models those roles
name, route templates, status classes — so no request can add a series: an
unknown role is counted as `names.UNKNOWN_ROLE`, a version that is not loaded as
`names.OTHER_ROLE_VERSION`, an unknown model as `OTHER_MODEL`.

Latency observations carry a `{"trace_id": <32 hex>}` exemplar when the current
request is sampled for tracing. prometheus-client's multiprocess mode cannot
store exemplars, so they are skipped there (the observation still counts).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace
from opentelemetry.trace import SpanContext
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from rolescope.exporters import names

if TYPE_CHECKING:
    from rolescope.service.observer import ExchangeSummary

OTHER_MODEL: Final = "<other>"
OPERATION_CHAT: Final = "chat"  # gen_ai.operation.name of every generation the service runs
# Raw (role, model, provider) triples are cached once mapped; the raw role comes from the
# request, so the cache is capped (the label values themselves are always bounded).
_LABEL_CACHE_LIMIT: Final = 1024
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
_ROLE_GENAI_LABELS = (
    names.LABEL_ROLE,
    names.LABEL_ROLE_VERSION,
    names.LABEL_OPERATION_NAME,
    names.LABEL_PROVIDER_NAME,
    names.LABEL_REQUEST_MODEL,
)


class RequestLabels:
    """Per-request label values the business layer learns and the HTTP middleware reads at the end.

    The middleware puts one in `REQUEST_LABELS` for each request; the observer hooks fill
    it in. It is a mutable object (not a value in the ContextVar) because a streamed
    answer runs in a child task that sees a copy of the context, not the context itself.
    """

    __slots__ = ("failed_status", "role", "role_version")

    def __init__(self) -> None:
        self.role: str | None = None
        self.role_version: str | None = None
        # A stream that ends with an `error` event was sent with status 200; this is the
        # status its error carried, so the request counts as the failure the user saw.
        self.failed_status: int | None = None


REQUEST_LABELS: ContextVar[RequestLabels | None] = ContextVar("rolescope_request_labels", default=None)


def _note_role(role: str, version: str | None) -> None:
    labels = REQUEST_LABELS.get()
    if labels is not None:
        labels.role = role
        labels.role_version = version


def multiprocess_enabled() -> bool:
    """True when prometheus-client writes values to shared files (`serve --workers N`)."""
    return bool(os.environ.get(MULTIPROC_ENV))


def current_exemplar() -> dict[str, str] | None:
    """The trace-id exemplar of the current request, or None when it is not sampled."""
    return _exemplar_of(trace.get_current_span().get_span_context())


def _exemplar_of(context: SpanContext) -> dict[str, str] | None:
    if not context.trace_flags.sampled:
        return None
    return {"trace_id": format(context.trace_id, "032x")}


class ServiceMetrics:
    """All service metrics on one registry; implements `rolescope.service.observer.ChatObserver`.

    `ServiceMetrics(CollectorRegistry())` in tests; the default is a fresh registry
    with the process, platform and GC collectors, so two services in one process
    never collide on the global registry.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        roles: Iterable[str] = (),
        models: Iterable[str] = (),
        role_versions: Iterable[tuple[str, str]] = (),
        process_metrics: bool = True,
        multiprocess: bool | None = None,
        version: str = "0.0.0",
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.multiprocess = multiprocess_enabled() if multiprocess is None else multiprocess
        self.exemplars = not self.multiprocess
        self._roles: frozenset[str] = frozenset()
        self._models: frozenset[str] = frozenset()
        self._role_versions: frozenset[tuple[str, str]] = frozenset()
        self._http_children: dict[tuple[str, ...], tuple[Any, Any]] = {}
        self._in_flight_children: dict[str, Gauge] = {}
        # Keys are built from bounded label values only (roles, models, operations), so this stays small.
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.set_label_sets(roles, models, role_versions)
        if process_metrics and not self.multiprocess:
            _register_process_collectors(self.registry)
        reg = self.registry
        http_labels = (
            names.LABEL_ROUTE, names.LABEL_METHOD, names.LABEL_STATUS_CLASS, names.LABEL_ROLE,
            names.LABEL_ROLE_VERSION,
        )

        self.http_requests = Counter(
            _base(names.HTTP_REQUESTS_TOTAL),
            "HTTP requests by route template, method, status class, role and role version.",
            http_labels, registry=reg,
        )
        self.http_duration = Histogram(
            names.HTTP_REQUEST_DURATION, "HTTP request duration until the last byte of the response.",
            http_labels, buckets=names.HTTP_DURATION_BUCKETS, registry=reg,
        )
        self.http_in_flight = Gauge(
            names.HTTP_IN_FLIGHT, "HTTP requests being served, by route template.",
            (names.LABEL_ROUTE,), registry=reg, multiprocess_mode="livesum",
        )
        self.http_rejected = Counter(
            _base(names.HTTP_REJECTED_TOTAL), "Requests refused before any work (overload, too large, ...).",
            (names.LABEL_REASON,), registry=reg,
        )
        self.concurrency_limit = Gauge(
            names.CONCURRENCY_LIMIT, "Configured limit of in-flight chat requests (0 = none).",
            registry=reg, multiprocess_mode="livesum",
        )
        self.websocket_connections = Gauge(
            names.WEBSOCKET_CONNECTIONS_OPEN, "Chat WebSocket connections open (accepted, not yet closed).",
            registry=reg, multiprocess_mode="livesum",
        )
        self.ttft = Histogram(
            names.GENAI_TTFT, "Time from request start to the first output token.",
            _ROLE_GENAI_LABELS, buckets=names.GENAI_TTFT_BUCKETS, registry=reg,
        )
        self.tpot = Histogram(
            names.GENAI_TPOT, "Time per output token after the first one.",
            _ROLE_GENAI_LABELS, buckets=names.GENAI_TPOT_BUCKETS, registry=reg,
        )
        self.genai_duration = Histogram(
            names.GENAI_REQUEST_DURATION, "Generative request duration, first byte in to last token out.",
            _ROLE_GENAI_LABELS, buckets=names.GENAI_DURATION_BUCKETS, registry=reg,
        )
        self.token_usage = Counter(
            _base(names.GENAI_TOKEN_USAGE), "Tokens consumed, by gen_ai_token_type (input or output).",
            (*_ROLE_GENAI_LABELS, names.LABEL_TOKEN_TYPE), registry=reg,
        )
        model_labels = (names.LABEL_ROLE, names.LABEL_ROLE_VERSION, names.LABEL_REQUEST_MODEL)
        self.inference_timeouts = Counter(
            _base(names.INFERENCE_TIMEOUTS_TOTAL), "Inference calls that ran past the role's timeout_ms.",
            model_labels, registry=reg,
        )
        self.inference_errors = Counter(
            _base(names.INFERENCE_ERRORS_TOTAL), "Inference calls that failed for another reason.",
            model_labels, registry=reg,
        )
        self.store_duration = Histogram(
            names.STORE_OPERATION_DURATION, "Session-store operation duration.",
            (names.LABEL_STORE_OPERATION, names.LABEL_STORE_BACKEND),
            buckets=names.STORE_DURATION_BUCKETS, registry=reg,
        )
        self.telemetry_dropped = Counter(
            _base(names.TELEMETRY_DROPPED_TOTAL), "Telemetry items dropped instead of slowing requests.",
            (names.LABEL_SIGNAL, names.LABEL_REASON), registry=reg,
        )
        self.memory_bytes = Gauge(
            names.MEMORY_BYTES_PER_REQUEST, "Bytes allocated per request (memory-measuring mode).",
            (names.LABEL_KIND,), registry=reg, multiprocess_mode="mostrecent",
        )
        self.memory_allocations = Gauge(
            names.MEMORY_ALLOCATIONS_PER_REQUEST, "Allocations per request (memory-measuring mode).",
            (names.LABEL_KIND,), registry=reg, multiprocess_mode="mostrecent",
        )
        self.memory_baseline_bytes = Gauge(
            names.MEMORY_BASELINE_BYTES_PER_REQUEST, "Committed baseline of bytes allocated per request.",
            (names.LABEL_KIND,), registry=reg, multiprocess_mode="mostrecent",
        )
        self.build_info = Gauge(
            names.BUILD_INFO, "Always 1: the running rolescope version.", ("version", "python"),
            registry=reg, multiprocess_mode="max",
        )
        self.build_info.labels(version, platform.python_version()).set(1)
        self.role_reloads = Counter(
            _base(names.ROLE_RELOADS_TOTAL), "Role-file reloads, applied or refused (the old roles kept).",
            (names.LABEL_OUTCOME,), registry=reg,
        )
        self.tls_reloads = Counter(
            _base(names.TLS_RELOADS_TOTAL),
            "Reloads of the TLS certificate, key and client CA files, applied or refused (the old kept).",
            (names.LABEL_OUTCOME,), registry=reg,
        )
        self.mirror_requests = Counter(
            _base(names.MIRROR_REQUESTS_TOTAL), "Requests mirrored to a candidate (shed: not sent).",
            (names.LABEL_OUTCOME,), registry=reg,
        )
        self.mirror_duration = Histogram(
            names.MIRROR_REQUEST_DURATION, "Mirrored request duration, until the candidate's last byte.",
            (names.LABEL_OUTCOME,), buckets=names.GENAI_DURATION_BUCKETS, registry=reg,
        )
        self.session_version_moves = Counter(
            _base(names.SESSION_VERSION_MOVES_TOTAL),
            "Sessions moved to another version because their stored version was removed.",
            (names.LABEL_ROLE, names.LABEL_ROLE_VERSION), registry=reg,
        )
        for outcome in names.RELOAD_OUTCOMES:
            self.role_reloads.labels(outcome)
            self.tls_reloads.labels(outcome)
        for outcome in names.MIRROR_OUTCOMES:
            self.mirror_requests.labels(outcome)
        # Pre-create the drop series so a dashboard shows 0 rather than "no data".
        for reason in (names.DROP_REASON_QUEUE_FULL, names.DROP_REASON_EXPORT_FAILED):
            self.telemetry_dropped.labels(names.SIGNAL_SPANS, reason)

    # --- label sets ----------------------------------------------------------------
    def set_label_sets(
        self,
        roles: Iterable[str],
        models: Iterable[str] = (),
        role_versions: Iterable[tuple[str, str]] = (),
    ) -> None:
        """The roles, models and (role, version) pairs that may appear as label values (the loaded roles)."""
        self._roles = frozenset(roles)
        self._models = frozenset(models)
        self._role_versions = frozenset(role_versions)
        self._genai_labels: dict[tuple[str, str | None, str, str], tuple[str, ...]] = {}

    def role_label(self, role: object) -> str:
        return role if isinstance(role, str) and role in self._roles else names.UNKNOWN_ROLE

    def version_label(self, role: object, version: object) -> str:
        """The version when that version of that role is loaded, else `<other>`: bounded like roles."""
        if isinstance(role, str) and isinstance(version, str) and (role, version) in self._role_versions:
            return version
        return names.OTHER_ROLE_VERSION

    def model_label(self, model: str) -> str:
        return model if model in self._models else OTHER_MODEL

    def _genai(self, role: str, version: str | None, model: str, provider: str) -> tuple[str, ...]:
        key = (role, version, model, provider)
        labels = self._genai_labels.get(key)
        if labels is None:
            labels = (
                self.role_label(role), self.version_label(role, version), OPERATION_CHAT, provider,
                self.model_label(model),
            )
            if len(self._genai_labels) < _LABEL_CACHE_LIMIT:
                self._genai_labels[key] = labels
        return labels

    def _child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        """`metric.labels(*labels)`, cached: `labels()` validates and locks on every call (~3 µs)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _exemplar(self, trace_id: str | None) -> dict[str, str] | None:
        """An exemplar only for a sampled trace: an unsampled trace id would link to nothing."""
        if trace_id is None or not self.exemplars:
            return None
        sampled = trace.get_current_span().get_span_context().trace_flags.sampled
        return {"trace_id": trace_id} if sampled else None

    # --- HTTP (called by the ASGI middleware) ----------------------------------------
    def observe_http(
        self,
        route: str,
        method: str,
        status_class: str,
        role: str,
        seconds: float,
        span_context: SpanContext | None = None,
        role_version: str = names.OTHER_ROLE_VERSION,
    ) -> None:
        """One request; the exemplar comes from `span_context` (the request's span) or the current span."""
        labels = (route, method, status_class, role, role_version)
        children = self._http_children.get(labels)
        if children is None:
            children = (self.http_requests.labels(*labels), self.http_duration.labels(*labels))
            self._http_children[labels] = children
        children[0].inc()
        exemplar = None
        if self.exemplars:
            exemplar = current_exemplar() if span_context is None else _exemplar_of(span_context)
        children[1].observe(seconds, exemplar)

    def in_flight(self, route: str) -> Gauge:
        gauge = self._in_flight_children.get(route)
        if gauge is None:
            gauge = self._in_flight_children[route] = self.http_in_flight.labels(route)
        return gauge

    def rejected(self, reason: str) -> None:
        """Admission and body-size limits report refusals here (`on_reject` hooks)."""
        self.http_rejected.labels(reason).inc()

    # --- ChatObserver ----------------------------------------------------------------------
    def first_token(
        self,
        role: str,
        model: str,
        provider: str,
        seconds: float,
        trace_id: str | None,
        *,
        role_version: str | None = None,
    ) -> None:
        _note_role(role, role_version)
        labels = self._genai(role, role_version, model, provider)
        self._child(self.ttft, labels).observe(seconds, self._exemplar(trace_id))

    def generation_done(
        self,
        role: str,
        model: str,
        provider: str,
        duration_s: float,
        tpot_s: float | None,
        input_tokens: int,
        output_tokens: int,
        trace_id: str | None,
        *,
        role_version: str | None = None,
    ) -> None:
        _note_role(role, role_version)
        labels = self._genai(role, role_version, model, provider)
        self._child(self.genai_duration, labels).observe(duration_s, self._exemplar(trace_id))
        if tpot_s is not None:
            self._child(self.tpot, labels).observe(tpot_s)
        if input_tokens:
            self._child(self.token_usage, (*labels, "input")).inc(input_tokens)
        if output_tokens:
            self._child(self.token_usage, (*labels, "output")).inc(output_tokens)

    def inference_timeout(self, role: str, model: str, *, role_version: str | None = None) -> None:
        _note_role(role, role_version)
        self.inference_timeouts.labels(*self._model_labels(role, role_version, model)).inc()

    def inference_error(self, role: str, model: str, *, role_version: str | None = None) -> None:
        _note_role(role, role_version)
        self.inference_errors.labels(*self._model_labels(role, role_version, model)).inc()

    def _model_labels(self, role: str, version: str | None, model: str) -> tuple[str, str, str]:
        return self.role_label(role), self.version_label(role, version), self.model_label(model)

    def store_operation(self, operation: str, backend: str, seconds: float) -> None:
        self._child(self.store_duration, (operation, backend)).observe(seconds)

    def exchange_completed(self, summary: ExchangeSummary) -> None:
        # The role may differ from the request's when a session pins it: label the HTTP series with it.
        _note_role(summary.role, summary.role_version)
        if summary.stream and summary.status >= 500:
            labels = REQUEST_LABELS.get()
            if labels is not None:
                labels.failed_status = summary.status

    def session_version_moved(self, role: str, role_version: str, *, moved_from: str) -> None:
        labels = (self.role_label(role), self.version_label(role, role_version))
        self._child(self.session_version_moves, labels).inc()

    # --- role reloads and mirroring (called by the composition root) -----------------------
    def role_reload(self, outcome: str) -> None:
        self.role_reloads.labels(outcome).inc()

    def tls_reload(self, outcome: str) -> None:
        self.tls_reloads.labels(outcome).inc()

    def mirror_request(self, outcome: str, seconds: float | None) -> None:
        """One mirrored request; `seconds` is None when it was shed before it was sent."""
        self._child(self.mirror_requests, (outcome,)).inc()
        if seconds is not None:
            self._child(self.mirror_duration, (outcome,)).observe(seconds)

    # --- telemetry about telemetry ------------------------------------------------------
    def count_dropped(self, signal: str, reason: str, amount: int = 1) -> None:
        self.telemetry_dropped.labels(signal, reason).inc(amount)


def _base(counter_name: str) -> str:
    """prometheus-client appends `_total` to counters itself; names.py holds the exposed name."""
    return counter_name.removesuffix("_total")


def _register_process_collectors(registry: CollectorRegistry) -> None:
    if registry is REGISTRY:
        # The global registry already carries the default collectors.
        return
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
