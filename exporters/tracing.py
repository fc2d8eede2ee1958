"""OpenTelemetry SDK setup: the SDK reads its own `OTEL_*` variables; rolescope validates and defaults.

Traces are off unless an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`). The SDK and its OTLP exporters read the
endpoint, headers, timeout, compression, certificates, resource attributes,
service name, batch settings and the sampler from the environment themselves.
rolescope adds three things on top:

- validation at start-up: a bad value is a `ConfigError` naming the variable
  and what was expected (the SDK would log a warning and carry on with a
  default), every problem at once;
- the exporter class, chosen by `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`
  (`http/protobuf`, the default, or `grpc`);
- with no `OTEL_TRACES_SAMPLER`, head sampling of 10 % of traces, parent-based
  (`OTEL_TRACES_SAMPLER_ARG` alone changes the ratio), and `rolescope` as the
  service name when none is set.

Spans leave through a bounded batch queue only (`span_export`), so a request
never waits for an exporter; what cannot leave is dropped and counted in
`rolescope_telemetry_dropped_total{signal="spans"}`. At run time telemetry only
degrades.

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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

from rolescope.errors import ConfigError
from rolescope.exporters.span_export import BoundedBatchSpanProcessor, DropCounter, quiet_exporter_loggers

log = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME: Final = "rolescope"
DEFAULT_SAMPLER: Final = "parentbased_traceidratio"
DEFAULT_RATIO: Final = 0.1
DEFAULT_MAX_QUEUE_SIZE: Final = 2048  # the SDK's own default for OTEL_BSP_MAX_QUEUE_SIZE
PROTOCOLS: Final = ("http/protobuf", "grpc")
# `key1=value1,key2=value2` (W3C Baggage form); the SDK would skip a malformed item with a warning.
PAIR_VARIABLES: Final = (
    "OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
)
SAMPLERS: Final = (
    "always_on", "always_off", "traceidratio",
    "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio",
)

__all__ = ["DropCounter", "TracingConfig", "build_provider", "install_tracing", "read_config"]


@dataclass(frozen=True, slots=True)
class TracingConfig:
    """What rolescope needs to know of the `OTEL_*` settings; the SDK reads the rest itself."""

    endpoint: str  # as configured, for messages only: the exporter reads it from the environment
    protocol: str
    sampler_name: str
    ratio: float | None  # the root ratio of a `*traceidratio` sampler
    sdk_sampler: bool  # OTEL_TRACES_SAMPLER is set: the SDK builds the sampler from the environment
    max_queue_size: int


def _env(environ: Mapping[str, str], key: str) -> str:
    return environ.get(key, "").strip()


def _ratio(value: str, problems: list[str]) -> float:
    try:
        ratio = float(value)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        problems.append(f"OTEL_TRACES_SAMPLER_ARG={value!r} is not a ratio; expected a number from 0 to 1.")
    return ratio


def _check_pairs(environ: Mapping[str, str], key: str, problems: list[str]) -> None:
    """`key1=value1,key2=value2`, the W3C Baggage form of resource attributes and OTLP headers."""
    for item in filter(None, (part.strip() for part in _env(environ, key).split(","))):
        name, sep, _ = item.partition("=")
        if not sep or not name.strip():
            problems.append(f"{key} item {item!r} is not key=value.")


def _check_endpoint(environ: Mapping[str, str], problems: list[str]) -> str | None:
    for key in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        value = _env(environ, key)
        if value:
            parsed = urllib.parse.urlparse(value)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                problems.append(f"{key}={value!r} is not a URL; expected e.g. 'http://127.0.0.1:4318'.")
            return value
    return None


def read_config(environ: Mapping[str, str]) -> TracingConfig | None:
    """Validate the `OTEL_*` settings tracing depends on; None when traces are off.

    `environ` must be the environment the SDK will read (the process's own), or the
    validation would check other values than the ones applied.
    """
    if _env(environ, "OTEL_SDK_DISABLED").lower() == "true":
        return None
    exporter = _env(environ, "OTEL_TRACES_EXPORTER").lower() or "otlp"
    if exporter == "none":
        return None
    problems: list[str] = []
    if exporter != "otlp":
        problems.append(f"OTEL_TRACES_EXPORTER={exporter!r} is not supported; expected 'otlp' or 'none'.")
    protocol_keys = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    protocol_key = next((k for k in protocol_keys if _env(environ, k)), protocol_keys[1])
    protocol = _env(environ, protocol_key).lower() or "http/protobuf"
    if protocol not in PROTOCOLS:
        expected = ", ".join(PROTOCOLS)
        problems.append(f"{protocol_key}={protocol!r} is not supported; expected one of {expected}.")
    endpoint = _check_endpoint(environ, problems)
    if endpoint is None and not problems:
        return None  # traces off: the sampler, resource and batch settings are never applied
    sampler_name = _env(environ, "OTEL_TRACES_SAMPLER").lower()
    sdk_sampler = bool(sampler_name)
    if sampler_name and sampler_name not in SAMPLERS:
        problems.append(
            f"OTEL_TRACES_SAMPLER={sampler_name!r} is not supported; expected one of {', '.join(SAMPLERS)}."
        )
    sampler_name = sampler_name or DEFAULT_SAMPLER
    ratio_arg = _env(environ, "OTEL_TRACES_SAMPLER_ARG")
    # The specification's default ratio is 1 once a ratio sampler is named; rolescope's own default is 10 %.
    ratio = _ratio(ratio_arg, problems) if ratio_arg else (1.0 if sdk_sampler else DEFAULT_RATIO)
    for key in PAIR_VARIABLES:
        _check_pairs(environ, key, problems)
    queue_size = _env(environ, "OTEL_BSP_MAX_QUEUE_SIZE")
    if queue_size and not (queue_size.isdigit() and int(queue_size) > 0):
        problems.append(f"OTEL_BSP_MAX_QUEUE_SIZE={queue_size!r} is not a positive whole number.")
    if problems:
        raise ConfigError("\n".join(problems))
    assert endpoint is not None  # an unset endpoint returned above, a bad one is a problem
    return TracingConfig(
        endpoint=endpoint,
        protocol=protocol,
        sampler_name=sampler_name,
        ratio=ratio if sampler_name.endswith("traceidratio") else None,
        sdk_sampler=sdk_sampler,
        max_queue_size=int(queue_size) if queue_size else DEFAULT_MAX_QUEUE_SIZE,
    )


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


def root_bound(config: TracingConfig) -> int | None:
    """The bound on a trace id's low 64 bits under which the configured sampler samples a root span."""
    root = config.sampler_name.removeprefix("parentbased_")
    if root == "always_on":
        return TraceIdRatioBased.TRACE_ID_LIMIT + 1
    if root == "always_off":
        return 0
    if root == "traceidratio" and config.ratio is not None:
        return TraceIdRatioBased.get_bound_for_rate(config.ratio)
    return None


class ShortcutTracerProvider(TracerProvider):
    """A TracerProvider whose tracers take the unsampled shortcuts (parent-based samplers only)."""

    def __init__(self, root_bound: int | None, **kwargs: Any) -> None:
        ids = PresetIdGenerator()
        super().__init__(id_generator=ids, **kwargs)
        self._preset_ids = ids
        self._root_bound = root_bound

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return ShortcutTracer(super().get_tracer(*args, **kwargs), self._preset_ids, self._root_bound)


def _sampler(config: TracingConfig) -> Sampler | None:
    """rolescope's default sampler, or None for the one the SDK builds from OTEL_TRACES_SAMPLER."""
    if config.sdk_sampler:
        return None
    return ParentBased(TraceIdRatioBased(config.ratio if config.ratio is not None else DEFAULT_RATIO))


def _resource(service_version: str) -> Resource:
    # Resource.create lets the attributes passed in win over the environment; the
    # environment must win over rolescope's defaults, so it is merged again on top.
    defaults = {"service.name": DEFAULT_SERVICE_NAME}
    if service_version:
        defaults["service.version"] = service_version
    return Resource.create(defaults).merge(OTELResourceDetector().detect())


def _make_exporter(config: TracingConfig) -> SpanExporter:
    """The OTLP exporter for the protocol; it reads endpoint, headers, timeout and TLS from `OTEL_*`."""
    if config.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter()


def build_provider(
    config: TracingConfig,
    on_drop: DropCounter,
    exporter: SpanExporter | None = None,
    *,
    service_version: str = "",
    **batch_options: Any,
) -> TracerProvider:
    """A provider exporting through a bounded, counting batch queue (exporter injectable for tests)."""
    kwargs: dict[str, Any] = {"sampler": _sampler(config), "resource": _resource(service_version)}
    if config.sampler_name.startswith("parentbased_"):
        provider: TracerProvider = ShortcutTracerProvider(root_bound(config), **kwargs)
    else:
        provider = TracerProvider(**kwargs)
    batch_options.setdefault("max_queue_size", config.max_queue_size)
    inner = exporter if exporter is not None else _make_exporter(config)
    processor = BoundedBatchSpanProcessor(inner, on_drop, config.endpoint, **batch_options)
    provider.add_span_processor(processor)
    quiet_exporter_loggers()
    return provider


def install_tracing(
    environ: Mapping[str, str], on_drop: DropCounter, service_version: str = ""
) -> TracerProvider | None:
    """Install the global tracer provider from `OTEL_*`; None (and nothing installed) when off.

    `environ` is validated; the SDK then reads the same variables from the process environment.
    """
    config = read_config(environ)
    if config is None:
        return None
    provider = build_provider(config, on_drop, service_version=service_version)
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
