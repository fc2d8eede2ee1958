"""Tracing setup from OTEL_* variables, export to a real OTLP/HTTP receiver, and counted drops."""

from __future__ import annotations

import logging
from collections import Counter

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased

from rolescope.errors import ConfigError
from rolescope.exporters import names
from rolescope.exporters.tracing import (
    ShortcutTracerProvider,
    build_provider,
    build_sampler,
    read_config,
)


class Drops:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, reason: str, spans: int) -> None:
        self.counts[reason] += spans


def test_traces_are_off_without_an_endpoint() -> None:
    assert read_config({}) is None
    assert read_config({"OTEL_TRACES_SAMPLER": "always_on"}) is None
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    assert read_config({**endpoint, "OTEL_SDK_DISABLED": "true"}) is None
    assert read_config({**endpoint, "OTEL_TRACES_EXPORTER": "none"}) is None


def test_an_endpoint_alone_gives_ten_percent_parent_based_sampling_over_http() -> None:
    config = read_config({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318/"})
    assert config is not None
    assert config.endpoint == "http://127.0.0.1:4318/v1/traces"
    assert (config.protocol, config.sampler_name, config.ratio) == (
        "http/protobuf",
        "parentbased_traceidratio",
        0.1,
    )
    assert config.service_name == "rolescope"
    sampler = build_sampler(config)
    assert isinstance(sampler, ParentBased)
    assert "0.1" in sampler.get_description()


def test_standard_variables_choose_protocol_sampler_and_resource() -> None:
    config = read_config(
        {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_TRACES_SAMPLER": "traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=staging,team=role%20play",
            "OTEL_SERVICE_NAME": "roles-eu",
        }
    )
    assert config is not None
    assert (config.endpoint, config.protocol, config.sampler_name, config.ratio) == (
        "http://127.0.0.1:4317",
        "grpc",
        "traceidratio",
        0.25,
    )
    assert config.resource_attributes == {
        "deployment.environment": "staging",
        "team": "role play",
        "service.name": "roles-eu",
    }
    assert not isinstance(build_sampler(config), ParentBased)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ("OTEL_TRACES_SAMPLER_ARG", "ten"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318"),
        ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
        ("OTEL_TRACES_EXPORTER", "zipkin"),
    ],
)
def test_bad_values_are_refused_at_start_naming_the_variable(variable: str, value: str) -> None:
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", variable: value}
    with pytest.raises(ConfigError, match=variable):
        read_config(environ)


def test_spans_reach_a_real_otlp_receiver_with_the_service_name(otlp_receiver) -> None:  # type: ignore[no-untyped-def]
    config = read_config(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.url,
            "OTEL_TRACES_SAMPLER": "always_on",
            "OTEL_SERVICE_NAME": "roles-test",
        }
    )
    assert config is not None
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
    assert not drops.counts


def test_a_refused_export_is_counted_and_logged_once(  # type: ignore[no-untyped-def]
    refusing_endpoint: str, caplog, monkeypatch
) -> None:
    # The OTLP exporter reads its own timeout from the environment; keep its retries short.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0.5")
    config = read_config(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": refusing_endpoint, "OTEL_TRACES_SAMPLER": "always_on"}
    )
    assert config is not None
    drops = Drops()
    provider = build_provider(config, drops)
    tracer = provider.get_tracer("test")
    with caplog.at_level(logging.WARNING, logger="rolescope.exporters.tracing"):
        for batch in range(2):
            for _ in range(3):
                tracer.start_span(f"lost-{batch}").end()
            provider.force_flush()
    provider.shutdown()
    assert drops.counts[names.DROP_REASON_EXPORT_FAILED] == 6
    warnings = [r for r in caplog.records if r.name == "rolescope.exporters.tracing"]
    assert len(warnings) == 1
    assert refusing_endpoint in warnings[0].getMessage()


class _Stuck(SpanExporter):
    """An exporter that blocks until released, as an exporter stuck on a hung collector does."""

    def __init__(self) -> None:
        import threading

        self.release = threading.Event()

    def export(self, spans):  # type: ignore[no-untyped-def]
        self.release.wait(10)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def test_a_full_queue_drops_new_spans_without_blocking_and_counts_them() -> None:
    config = read_config(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_TRACES_SAMPLER": "always_on"}
    )
    assert config is not None
    drops, stuck = Drops(), _Stuck()
    provider = build_provider(config, drops, exporter=stuck, max_queue_size=16, max_export_batch_size=4)
    tracer = provider.get_tracer("test")
    for index in range(200):
        tracer.start_span(f"span-{index}").end()
    stuck.release.set()
    provider.shutdown()
    # The worker holds at most one batch while stuck; everything beyond the queue is dropped and counted.
    assert 200 - 16 - 4 <= drops.counts[names.DROP_REASON_QUEUE_FULL] < 200


def test_children_of_an_unsampled_request_skip_the_sdk() -> None:
    config = read_config(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_TRACES_SAMPLER_ARG": "0"}
    )
    assert config is not None
    provider = build_provider(config, Drops())
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


def test_children_of_a_sampled_request_are_real_spans() -> None:
    config = read_config(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_TRACES_SAMPLER_ARG": "1"}
    )
    assert config is not None
    provider = build_provider(config, Drops())
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("request") as root, tracer.start_as_current_span("chat") as chat:
        assert chat.is_recording()
        assert chat.get_span_context().span_id != root.get_span_context().span_id
        assert chat.get_span_context().trace_id == root.get_span_context().trace_id
    provider._active_span_processor._span_processors[0].span_exporter._inner.shutdown()  # type: ignore[attr-defined]
    provider.shutdown()
