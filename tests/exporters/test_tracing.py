"""Tracing from OTEL_* variables: the SDK reads them, rolescope validates and defaults; drops are counted."""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Sequence

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased

from rolescope.errors import ConfigError
from rolescope.exporters import names
from rolescope.exporters.tracing import ShortcutTracerProvider, TracingConfig, build_provider, read_config

Environment = Callable[..., TracingConfig | None]
NOWHERE = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}  # for tests that inject their exporter


class Drops:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, reason: str, spans: int) -> None:
        with self.lock:
            self.counts[reason] += spans


@pytest.fixture
def otel_env(monkeypatch: pytest.MonkeyPatch) -> Environment:
    """Set exactly these OTEL_* variables in the process environment (the SDK reads that) and validate."""

    def configure(**variables: str) -> TracingConfig | None:
        for key in [k for k in os.environ if k.startswith("OTEL_")]:
            monkeypatch.delenv(key)
        for key, value in variables.items():
            monkeypatch.setenv(key, value)
        return read_config(os.environ)

    return configure


def _configured(otel_env: Environment, **variables: str) -> TracingConfig:
    config = otel_env(**variables)
    assert config is not None
    return config


def _one_span(provider: TracerProvider, exporter: InMemorySpanExporter) -> ReadableSpan:
    provider.get_tracer("test").start_span("request").end()
    provider.force_flush()
    (span,) = exporter.get_finished_spans()
    return span


def test_traces_are_off_without_an_endpoint() -> None:
    assert read_config({}) is None
    assert read_config({"OTEL_TRACES_SAMPLER": "always_on"}) is None
    assert read_config({"OTEL_TRACES_SAMPLER": "sometimes"}) is None  # never applied, so not judged
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    assert read_config({**endpoint, "OTEL_SDK_DISABLED": "true"}) is None
    assert read_config({**endpoint, "OTEL_TRACES_EXPORTER": "none"}) is None


def test_an_endpoint_alone_gives_ten_percent_parent_based_sampling_and_the_default_name(
    otel_env: Environment,
) -> None:
    config = _configured(otel_env, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318/")
    assert (config.protocol, config.sampler_name, config.ratio, config.sdk_sampler) == (
        "http/protobuf",
        "parentbased_traceidratio",
        0.1,
        False,
    )
    memory = InMemorySpanExporter()
    provider = build_provider(config, Drops(), exporter=memory, service_version="1.2.3")
    assert isinstance(provider, ShortcutTracerProvider)
    assert isinstance(provider.sampler, ParentBased)
    assert "TraceIdRatioBased{0.1}" in provider.sampler.get_description()
    root = provider.get_tracer("test").start_span("probe")
    root.end()
    provider.shutdown()
    resource = provider.resource.attributes
    assert (resource["service.name"], resource["service.version"]) == ("rolescope", "1.2.3")


def test_the_sdk_reads_sampler_and_resource_from_the_environment(otel_env: Environment) -> None:
    config = _configured(
        otel_env,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://127.0.0.1:4317",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_TRACES_SAMPLER="always_on",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=staging,team=role%20play,service.version=9",
        OTEL_SERVICE_NAME="roles-eu",
    )
    assert (config.protocol, config.sampler_name, config.sdk_sampler) == ("grpc", "always_on", True)
    memory = InMemorySpanExporter()
    provider = build_provider(config, Drops(), exporter=memory, service_version="1.2.3")
    assert not isinstance(provider, ShortcutTracerProvider)
    assert provider.sampler.get_description() == "AlwaysOnSampler"
    span = _one_span(provider, memory)
    provider.shutdown()
    attributes = span.resource.attributes
    assert attributes["service.name"] == "roles-eu"
    assert attributes["team"] == "role play" and attributes["deployment.environment"] == "staging"
    assert attributes["service.version"] == "9"  # the environment wins over the built-in version


def test_a_ratio_alone_changes_rolescope_default_and_a_named_sampler_is_the_sdks(
    otel_env: Environment,
) -> None:
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    only_ratio = _configured(otel_env, **endpoint, OTEL_TRACES_SAMPLER_ARG="0.25")
    provider = build_provider(only_ratio, Drops(), exporter=InMemorySpanExporter())
    assert "ParentBased" in provider.sampler.get_description()
    assert "TraceIdRatioBased{0.25}" in provider.sampler.get_description()
    provider.shutdown()

    named = _configured(
        otel_env, **endpoint, OTEL_TRACES_SAMPLER="traceidratio", OTEL_TRACES_SAMPLER_ARG="0.5"
    )
    provider = build_provider(named, Drops(), exporter=InMemorySpanExporter())
    assert provider.sampler.get_description() == "TraceIdRatioBased{0.5}"
    provider.shutdown()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "udp"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ("OTEL_TRACES_SAMPLER_ARG", "ten"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318"),
        ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "authorization"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "lots"),
        ("OTEL_TRACES_EXPORTER", "zipkin"),
    ],
)
def test_bad_values_are_refused_at_start_naming_the_variable(variable: str, value: str) -> None:
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", variable: value}
    with pytest.raises(ConfigError, match=variable) as refused:
        read_config(environ)
    assert repr(value) in str(refused.value)


def test_every_bad_value_is_reported_at_once() -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "localhost",
        "OTEL_TRACES_SAMPLER": "sometimes",
        "OTEL_TRACES_SAMPLER_ARG": "2",
    }
    with pytest.raises(ConfigError) as refused:
        read_config(environ)
    message = str(refused.value)
    assert all(key in message for key in environ), message


def test_spans_reach_a_real_otlp_http_receiver_with_the_headers_from_the_environment(  # type: ignore[no-untyped-def]
    otel_env: Environment, otlp_receiver
) -> None:
    config = _configured(
        otel_env,
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.url,
        OTEL_EXPORTER_OTLP_HEADERS="x-tenant=roles,x-token=s%20cret",
        OTEL_TRACES_SAMPLER="always_on",
        OTEL_SERVICE_NAME="roles-test",
    )
    drops = Drops()
    provider = build_provider(config, drops)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("parent"), tracer.start_as_current_span("child"):
        pass
    provider.shutdown()
    spans = otlp_receiver.wait_for(lambda s: len(s) >= 2)
    by_name = {span.name: span for span in spans}
    assert by_name["child"].parent_span_id == by_name["parent"].span_id
    assert by_name["child"].trace_id == by_name["parent"].trace_id
    assert by_name["parent"].service_name == "roles-test"
    assert otlp_receiver.headers[0]["x-tenant"] == "roles"
    assert otlp_receiver.headers[0]["x-token"] == "s cret"
    assert not drops.counts


def test_the_grpc_protocol_exports_over_grpc(otel_env: Environment, otlp_grpc_receiver) -> None:  # type: ignore[no-untyped-def]
    config = _configured(
        otel_env,
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_grpc_receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_HEADERS="x-tenant=roles",
        OTEL_TRACES_SAMPLER="always_on",
    )
    drops = Drops()
    provider = build_provider(config, drops)
    provider.get_tracer("test").start_span("over-grpc").end()
    provider.shutdown()
    spans = otlp_grpc_receiver.wait_for(lambda s: len(s) >= 1)
    assert [span.name for span in spans] == ["over-grpc"]
    assert spans[0].service_name == "rolescope"
    assert otlp_grpc_receiver.headers[0]["x-tenant"] == "roles"
    assert not drops.counts


def test_a_refused_export_is_counted_and_logged_once(  # type: ignore[no-untyped-def]
    otel_env: Environment, refusing_endpoint: str, caplog
) -> None:
    config = _configured(
        otel_env,
        OTEL_EXPORTER_OTLP_ENDPOINT=refusing_endpoint,
        OTEL_TRACES_SAMPLER="always_on",
        OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="0.5",  # the exporter's own retries, kept short
    )
    drops = Drops()
    provider = build_provider(config, drops)
    tracer = provider.get_tracer("test")
    with caplog.at_level(logging.WARNING, logger="rolescope.exporters.span_export"):
        for batch in range(2):
            for _ in range(3):
                tracer.start_span(f"lost-{batch}").end()
            provider.force_flush()
    provider.shutdown()
    assert drops.counts == {names.DROP_REASON_EXPORT_FAILED: 6}
    warnings = [r for r in caplog.records if r.name == "rolescope.exporters.span_export"]
    assert len(warnings) == 1
    assert refusing_endpoint in warnings[0].getMessage()


class _Failing(SpanExporter):
    """Fails every other batch: once by saying so, once by raising."""

    def __init__(self) -> None:
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        if self.calls % 2:
            return SpanExportResult.FAILURE
        raise ConnectionError("collector gone")


def test_an_exporter_that_fails_or_raises_has_every_span_counted(otel_env: Environment) -> None:
    config = _configured(otel_env, **NOWHERE, OTEL_TRACES_SAMPLER="always_on")
    drops, failing = Drops(), _Failing()
    provider = build_provider(config, drops, exporter=failing, max_export_batch_size=5)
    tracer = provider.get_tracer("test")
    for batch in range(4):
        for index in range(batch + 1):
            tracer.start_span(f"span-{batch}-{index}").end()
        provider.force_flush()
    provider.shutdown()
    assert failing.calls == 4
    assert drops.counts == {names.DROP_REASON_EXPORT_FAILED: 1 + 2 + 3 + 4}


class _Stuck(SpanExporter):
    """An exporter that blocks until released, as an exporter stuck on a hung collector does."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.received = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(10)
        self.received += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def test_a_full_queue_drops_new_spans_without_blocking_and_counts_every_one(  # type: ignore[no-untyped-def]
    otel_env: Environment, caplog
) -> None:
    config = _configured(otel_env, **NOWHERE, OTEL_TRACES_SAMPLER="always_on")
    drops, stuck = Drops(), _Stuck()
    provider = build_provider(config, drops, exporter=stuck, max_queue_size=16, max_export_batch_size=4)
    tracer = provider.get_tracer("test")
    with caplog.at_level(logging.WARNING):
        for index in range(200):
            tracer.start_span(f"span-{index}").end()
        dropped = drops.counts[names.DROP_REASON_QUEUE_FULL]
        stuck.release.set()
        provider.force_flush()
        # Once the queue has drained there is room again: a second wave is exported whole.
        for index in range(10):
            tracer.start_span(f"later-{index}").end()
        provider.shutdown()
    # Every span was either exported or counted; the worker holds at most one batch while stuck.
    assert stuck.received + dropped == 200 + 10
    assert 200 - 16 - 4 <= dropped <= 200 - 16
    assert drops.counts == {names.DROP_REASON_QUEUE_FULL: dropped}
    assert not [r for r in caplog.records if "queue" in r.getMessage().lower()]  # counted, not logged


def test_children_of_an_unsampled_request_skip_the_sdk(otel_env: Environment) -> None:
    config = _configured(otel_env, **NOWHERE, OTEL_TRACES_SAMPLER_ARG="0")
    provider = build_provider(config, Drops(), exporter=InMemorySpanExporter())
    assert isinstance(provider, ShortcutTracerProvider)
    tracer = provider.get_tracer("test")
    root = tracer.start_span("request")
    assert not root.get_span_context().trace_flags.sampled
    with trace.use_span(root), tracer.start_as_current_span("chat") as chat:
        child = tracer.start_span("inference")
    assert chat is root
    assert child.get_span_context() == root.get_span_context()
    assert not child.is_recording()
    provider.shutdown()


def test_children_of_a_sampled_request_are_real_spans(otel_env: Environment) -> None:
    config = _configured(otel_env, **NOWHERE, OTEL_TRACES_SAMPLER_ARG="1")
    memory = InMemorySpanExporter()
    provider = build_provider(config, Drops(), exporter=memory)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("request") as root, tracer.start_as_current_span("chat") as chat:
        assert chat.is_recording()
        assert chat.get_span_context().span_id != root.get_span_context().span_id
        assert chat.get_span_context().trace_id == root.get_span_context().trace_id
    provider.shutdown()
    assert sorted(span.name for span in memory.get_finished_spans()) == ["chat", "request"]


def test_the_root_shortcut_samples_the_configured_share(otel_env: Environment) -> None:
    config = _configured(otel_env, **NOWHERE, OTEL_TRACES_SAMPLER_ARG="0.3")
    memory = InMemorySpanExporter()
    provider = build_provider(config, Drops(), exporter=memory)
    tracer = provider.get_tracer("test")
    sampled = sum(tracer.start_span("request").get_span_context().trace_flags.sampled for _ in range(4000))
    provider.shutdown()
    # 4000 draws at 30 %: 1200 ± 5 standard deviations (29); the SDK's second decision must agree.
    assert 1200 - 150 < sampled < 1200 + 150
