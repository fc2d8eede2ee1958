"""OpenTelemetry SDK setup from the standard `OTEL_*` variables, and nothing else.

Traces are off unless an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`). With an endpoint and no
`OTEL_TRACES_SAMPLER`, rolescope head-samples 10 % of traces, parent-based.
Spans leave through a `BatchSpanProcessor` only, so a request never waits for
an exporter; what the exporter cannot take is dropped and counted in
`rolescope_telemetry_dropped_total{signal="spans"}` (the first failure is logged
once). Bad values are rejected at start-up; at run time telemetry only degrades.

Unsampled requests are the common case (90 % by default), so the tracer takes
shortcuts for them. A root span's sampling decision is made up front from the
trace id it draws (the ratio sampler's own rule), so an unsampled request gets a
non-recording span with fresh ids without running the SDK; and under a
parent-based sampler a child of an unsampled span can never be sampled, so it is
given the parent's non-recording span (the SDK costs ~10 µs a span).
"""

from __future__ import annotations

import logging
import random
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.util.types import Attributes

from rolescope.errors import ConfigError
from rolescope.exporters import names

log = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME: Final = "rolescope"
DEFAULT_SAMPLER: Final = "parentbased_traceidratio"
DEFAULT_RATIO: Final = 0.1
PROTOCOLS: Final = ("http/protobuf", "grpc")
SAMPLERS: Final = (
    "always_on", "always_off", "traceidratio",
    "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio",
)
# The OTLP exporters log every failed batch; rolescope logs the first one and counts the rest.
_EXPORTER_LOGGERS: Final = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
)

DropCounter = Callable[[str, int], None]  # (reason, spans)


@dataclass(frozen=True, slots=True)
class TracingConfig:
    endpoint: str
    protocol: str
    sampler_name: str
    ratio: float | None
    resource_attributes: dict[str, str]

    @property
    def service_name(self) -> str:
        return self.resource_attributes["service.name"]


def _env(environ: Mapping[str, str], key: str) -> str:
    return environ.get(key, "").strip()


def read_config(environ: Mapping[str, str], service_version: str = "") -> TracingConfig | None:
    """The tracing settings from `OTEL_*` variables; None when traces are off."""
    if _env(environ, "OTEL_SDK_DISABLED").lower() == "true":
        return None
    exporter = _env(environ, "OTEL_TRACES_EXPORTER").lower() or "otlp"
    if exporter == "none":
        return None
    if exporter != "otlp":
        raise ConfigError(f"OTEL_TRACES_EXPORTER={exporter!r} is not supported; expected 'otlp' or 'none'.")
    protocol = (
        _env(environ, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or _env(environ, "OTEL_EXPORTER_OTLP_PROTOCOL")
    ).lower() or "http/protobuf"
    if protocol not in PROTOCOLS:
        raise ConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported; expected one of {PROTOCOLS}."
        )
    endpoint = _traces_endpoint(environ, protocol)
    if endpoint is None:
        return None
    sampler_name = _env(environ, "OTEL_TRACES_SAMPLER").lower()
    ratio_arg = _env(environ, "OTEL_TRACES_SAMPLER_ARG")
    if not sampler_name:
        sampler_name = DEFAULT_SAMPLER
        ratio_default = DEFAULT_RATIO
    else:
        ratio_default = 1.0  # the specification's default once a ratio sampler is named explicitly
    if sampler_name not in SAMPLERS:
        raise ConfigError(
            f"OTEL_TRACES_SAMPLER={sampler_name!r} is not supported; expected one of {', '.join(SAMPLERS)}."
        )
    ratio: float | None = None
    if sampler_name.endswith("traceidratio"):
        ratio = _parse_ratio(ratio_arg) if ratio_arg else ratio_default
    attributes = parse_resource_attributes(_env(environ, "OTEL_RESOURCE_ATTRIBUTES"))
    attributes["service.name"] = (
        _env(environ, "OTEL_SERVICE_NAME") or attributes.get("service.name") or DEFAULT_SERVICE_NAME
    )
    if service_version:
        attributes.setdefault("service.version", service_version)
    return TracingConfig(endpoint, protocol, sampler_name, ratio, attributes)


def _traces_endpoint(environ: Mapping[str, str], protocol: str) -> str | None:
    specific = _env(environ, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    base = _env(environ, "OTEL_EXPORTER_OTLP_ENDPOINT")
    chosen = specific or base
    if not chosen:
        return None
    parsed = urllib.parse.urlparse(chosen)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        key = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" if specific else "OTEL_EXPORTER_OTLP_ENDPOINT"
        raise ConfigError(f"{key}={chosen!r} is not a URL; expected e.g. 'http://127.0.0.1:4318'.")
    if specific or protocol == "grpc":
        return chosen
    # The base endpoint gets the signal path appended (OTLP exporter specification).
    return chosen.rstrip("/") + "/v1/traces"


def _parse_ratio(value: str) -> float:
    try:
        ratio = float(value)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG={value!r} is not a ratio; expected a number from 0 to 1.")
    return ratio


def parse_resource_attributes(value: str) -> dict[str, str]:
    """`key1=value1,key2=value2` with percent-encoded values (W3C Baggage octets)."""
    attributes: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"OTEL_RESOURCE_ATTRIBUTES item {item!r} is not key=value.")
        attributes[key.strip()] = urllib.parse.unquote(raw.strip())
    return attributes


def build_sampler(config: TracingConfig) -> Sampler:
    ratio = config.ratio if config.ratio is not None else 1.0
    root: Sampler = {
        "always_on": ALWAYS_ON, "always_off": ALWAYS_OFF,
    }.get(config.sampler_name.removeprefix("parentbased_")) or TraceIdRatioBased(ratio)
    return ParentBased(root) if config.sampler_name.startswith("parentbased_") else root


# --- the shortcut for unsampled requests --------------------------------------------------
class _ParentScope:
    """`with tracer.start_as_current_span(...)` under an unsampled parent: keeps the parent current."""

    __slots__ = ("span",)

    def __init__(self, span: trace.Span) -> None:
        self.span = span

    def __enter__(self) -> trace.Span:
        return self.span

    def __exit__(self, *exc: object) -> None:
        return None


def _unsampled_parent(context: Any) -> trace.Span | None:
    span = trace.get_current_span(context)
    span_context = span.get_span_context()
    if span_context.is_valid and not span_context.trace_flags.sampled:
        return span
    return None


class PresetIdGenerator(RandomIdGenerator):
    """Random ids, except that the next trace id can be chosen in advance (per thread).

    The root shortcut draws the trace id itself to decide sampling before the SDK runs;
    a sampled root must then get that very id from the SDK, or the SDK's sampler would
    decide again on another id and sample ratio² of the requests.
    """

    def __init__(self) -> None:
        self._next = threading.local()

    def preset(self, trace_id: int) -> None:
        self._next.trace_id = trace_id

    def generate_trace_id(self) -> int:
        trace_id: int = getattr(self._next, "trace_id", 0)
        if trace_id:
            self._next.trace_id = 0
            return trace_id
        return super().generate_trace_id()


# The flags the SDK gives an unsampled span with a random trace id (W3C Trace Context level 2).
_UNSAMPLED_FLAGS: Final = trace.TraceFlags(getattr(trace.TraceFlags, "RANDOM_TRACE_ID", 0))


class ShortcutTracer(trace.Tracer):
    """An SDK tracer that skips the SDK for spans that will not be sampled.

    Children of an unsampled span get their parent's non-recording span. A root span
    (no valid parent) draws its trace id and applies the root sampler's rule — the low
    64 bits under a bound, exactly as `TraceIdRatioBased` does — so an unsampled root
    is one non-recording span with fresh ids, at the cost of two random numbers.
    """

    def __init__(self, inner: trace.Tracer, ids: PresetIdGenerator | None, root_bound: int | None) -> None:
        self._inner = inner
        self._ids = ids
        self._root_bound = root_bound

    def start_span(self, name: str, context: Any = None, *args: Any, **kwargs: Any) -> trace.Span:
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid:
            if not parent.trace_flags.sampled:
                return trace.NonRecordingSpan(parent)
        elif self._ids is not None and self._root_bound is not None:
            trace_id = random.getrandbits(128) or 1
            if trace_id & TraceIdRatioBased.TRACE_ID_LIMIT >= self._root_bound:
                span_id = random.getrandbits(64) or 1
                return trace.NonRecordingSpan(
                    trace.SpanContext(trace_id, span_id, is_remote=False, trace_flags=_UNSAMPLED_FLAGS)
                )
            self._ids.preset(trace_id)
        return self._inner.start_span(name, context, *args, **kwargs)

    def start_as_current_span(  # type: ignore[override]
        self, name: str, context: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        parent = _unsampled_parent(context)
        if parent is not None:
            return _ParentScope(parent)
        return self._inner.start_as_current_span(name, context, *args, **kwargs)


def root_bound(sampler: Sampler) -> int | None:
    """The bound on a trace id's low 64 bits under which `sampler` samples a root span.

    None when the rule is not known (a sampler rolescope does not build), and the SDK decides.
    """
    # ParentBased keeps its root sampler private; without it the SDK decides every root.
    root = getattr(sampler, "_root", None) if isinstance(sampler, ParentBased) else sampler
    if isinstance(root, TraceIdRatioBased):
        return root.bound
    if root is ALWAYS_ON:
        return TraceIdRatioBased.TRACE_ID_LIMIT + 1
    if root is ALWAYS_OFF:
        return 0
    return None


class ShortcutTracerProvider(TracerProvider):
    """A TracerProvider whose tracers take the unsampled shortcuts (parent-based samplers only)."""

    def __init__(self, sampler: Sampler, **kwargs: Any) -> None:
        ids = PresetIdGenerator()
        super().__init__(sampler=sampler, id_generator=ids, **kwargs)
        self._preset_ids = ids
        self._root_bound = root_bound(sampler)

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return ShortcutTracer(super().get_tracer(*args, **kwargs), self._preset_ids, self._root_bound)


# --- export: batch only, drops counted ----------------------------------------------------
class _OnlyFirstRecord(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self._seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        first, self._seen = not self._seen, True
        return first


_quieted = threading.Lock()


def _quiet_exporter_loggers() -> None:
    with _quieted:
        for name in _EXPORTER_LOGGERS:
            logger = logging.getLogger(name)
            if not any(isinstance(f, _OnlyFirstRecord) for f in logger.filters):
                logger.addFilter(_OnlyFirstRecord())


class DropCountingExporter(SpanExporter):
    """Wraps an OTLP exporter: a failed batch is counted as dropped spans, never raised."""

    def __init__(self, inner: SpanExporter, on_drop: DropCounter, endpoint: str) -> None:
        self._inner = inner
        self._on_drop = on_drop
        self._endpoint = endpoint
        self._logged = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
            error = "" if result is SpanExportResult.SUCCESS else "the exporter reported a failure"
        except Exception as exc:  # telemetry must never break the host
            result, error = SpanExportResult.FAILURE, repr(exc)
        if result is not SpanExportResult.SUCCESS:
            self._on_drop(names.DROP_REASON_EXPORT_FAILED, len(spans))
            if not self._logged.is_set():
                self._logged.set()
                log.warning(
                    "exporting spans to %s failed (%s); spans are dropped and counted in %s from now on",
                    self._endpoint, error, names.TELEMETRY_DROPPED_TOTAL,
                )
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """A BatchSpanProcessor that drops the newest span when its queue is full, and counts it.

    The SDK would log a warning per span and evict the oldest one; under a dead
    exporter and full load that is thousands of log lines a second.
    """

    def __init__(self, exporter: SpanExporter, on_drop: DropCounter, **kwargs: Any) -> None:
        super().__init__(exporter, **kwargs)
        self._on_drop = on_drop
        batch = getattr(self, "_batch_processor", None)
        self._queue = getattr(batch, "_queue", None)
        self._capacity = int(getattr(batch, "_max_queue_size", 0))

    def on_end(self, span: ReadableSpan) -> None:
        if not (span.context and span.context.trace_flags.sampled):
            return
        if self._queue is not None and len(self._queue) >= self._capacity:
            self._on_drop(names.DROP_REASON_QUEUE_FULL, 1)
            return
        super().on_end(span)


def _make_exporter(config: TracingConfig) -> SpanExporter:
    if config.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(endpoint=config.endpoint, insecure=config.endpoint.startswith("http://"))
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(endpoint=config.endpoint)


def build_provider(
    config: TracingConfig,
    on_drop: DropCounter,
    exporter: SpanExporter | None = None,
    **batch_options: Any,
) -> TracerProvider:
    """A provider exporting through a counting batch processor (exporter injectable for tests)."""
    sampler = build_sampler(config)
    provider_class = ShortcutTracerProvider if isinstance(sampler, ParentBased) else TracerProvider
    attributes: Attributes = dict(config.resource_attributes)
    provider = provider_class(sampler=sampler, resource=Resource.create(attributes))
    inner = exporter if exporter is not None else _make_exporter(config)
    counting = DropCountingExporter(inner, on_drop, config.endpoint)
    provider.add_span_processor(CountingBatchSpanProcessor(counting, on_drop, **batch_options))
    _quiet_exporter_loggers()
    return provider


def install_tracing(
    environ: Mapping[str, str], on_drop: DropCounter, service_version: str = ""
) -> TracerProvider | None:
    """Install the global tracer provider from `OTEL_*`; None (and nothing installed) when off."""
    config = read_config(environ, service_version)
    if config is None:
        return None
    provider = build_provider(config, on_drop)
    trace.set_tracer_provider(provider)
    log.info(
        "tracing to %s over %s, sampler %s%s", config.endpoint, config.protocol, config.sampler_name,
        f" {config.ratio:g}" if config.ratio is not None else "",
    )
    return provider


def shutdown_tracing(provider: TracerProvider | None) -> None:
    """Export what is queued (bounded by the exporter's own timeout) and stop the worker thread."""
    if provider is not None:
        provider.shutdown()
