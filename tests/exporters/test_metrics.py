"""ServiceMetrics: names, buckets, bounded labels and exemplars, read back from the exposition text."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from rolescope.exporters import names
from rolescope.exporters.metrics import OTHER_MODEL, ServiceMetrics


def _metrics(**kwargs: object) -> ServiceMetrics:
    return ServiceMetrics(
        CollectorRegistry(),
        roles=["sherlock"],
        models=["sim-1"],
        role_versions=[("sherlock", "1.2"), ("sherlock", "1.3")],
        **kwargs,  # type: ignore[arg-type]
    )


def _buckets(registry: CollectorRegistry, name: str) -> set[str]:
    return {
        sample.labels["le"]
        for family in registry.collect()
        for sample in family.samples
        if sample.name == f"{name}_bucket"
    }


def test_latency_histograms_have_an_explicit_bucket_at_each_default_slo_threshold() -> None:
    metrics = _metrics()
    metrics.first_token("sherlock", "sim-1", "simulator", 0.2, None)
    metrics.generation_done("sherlock", "sim-1", "simulator", 1.0, 0.02, 10, 20, None)
    metrics.observe_http("/v1/chat", "POST", "2xx", "sherlock", 0.3)
    assert "0.5" in _buckets(metrics.registry, names.GENAI_TTFT)
    assert "5.0" in _buckets(metrics.registry, names.GENAI_REQUEST_DURATION)
    assert "5.0" in _buckets(metrics.registry, names.HTTP_REQUEST_DURATION)
    assert {"0.01", "81.92"} <= _buckets(metrics.registry, names.GENAI_REQUEST_DURATION)


def test_observer_hooks_fill_the_genai_series() -> None:
    metrics = _metrics()
    metrics.first_token("sherlock", "sim-1", "simulator", 0.2, None, role_version="1.3")
    metrics.generation_done("sherlock", "sim-1", "simulator", 1.0, 0.02, 10, 20, None, role_version="1.3")
    metrics.inference_timeout("sherlock", "sim-1", role_version="1.3")
    metrics.store_operation("save_exchange", "sqlite", 0.001)
    labels = {
        "role": "sherlock",
        "role_version": "1.3",
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "simulator",
        "gen_ai_request_model": "sim-1",
    }
    get = metrics.registry.get_sample_value
    assert get(f"{names.GENAI_TTFT}_count", labels) == 1
    assert get(f"{names.GENAI_TPOT}_count", labels) == 1
    assert get(names.GENAI_TOKEN_USAGE, {**labels, "gen_ai_token_type": "output"}) == 20
    assert get(names.GENAI_TOKEN_USAGE, {**labels, "gen_ai_token_type": "input"}) == 10
    timeout_labels = {"role": "sherlock", "role_version": "1.3", "gen_ai_request_model": "sim-1"}
    assert get(names.INFERENCE_TIMEOUTS_TOTAL, timeout_labels) == 1
    assert (
        get(f"{names.STORE_OPERATION_DURATION}_count", {"operation": "save_exchange", "backend": "sqlite"})
        == 1
    )


def test_unknown_roles_and_models_collapse_into_one_label_value() -> None:
    metrics = _metrics()
    for index in range(50):
        metrics.first_token(f"role-{index}", f"model-{index}", "simulator", 0.1, None)
    text = generate_latest(metrics.registry).decode()
    ttft_series = [line for line in text.splitlines() if line.startswith(f"{names.GENAI_TTFT}_count")]
    assert len(ttft_series) == 1
    assert f'role="{names.UNKNOWN_ROLE}"' in ttft_series[0]
    assert f'gen_ai_request_model="{OTHER_MODEL}"' in ttft_series[0]


def test_exemplars_carry_the_trace_id_only_for_sampled_requests() -> None:
    metrics = _metrics()
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        sampled_id = format(span.get_span_context().trace_id, "032x")
        metrics.first_token("sherlock", "sim-1", "simulator", 0.2, sampled_id)
        metrics.observe_http("/v1/chat", "POST", "2xx", "sherlock", 0.3)
    unsampled = NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(0)))
    with trace.use_span(unsampled):
        metrics.generation_done("sherlock", "sim-1", "simulator", 1.0, None, 1, 1, format(0xABC, "032x"))
    text = generate_openmetrics(metrics.registry).decode()
    exemplar_lines = [line for line in text.splitlines() if " # {" in line]
    assert any(
        line.startswith(f"{names.GENAI_TTFT}_bucket") and sampled_id in line for line in exemplar_lines
    )
    assert any(
        line.startswith(f"{names.HTTP_REQUEST_DURATION}_bucket") and sampled_id in line
        for line in exemplar_lines
    )
    assert not any(line.startswith(names.GENAI_REQUEST_DURATION) for line in exemplar_lines)


def test_multiprocess_mode_skips_exemplars_and_per_process_collectors() -> None:
    metrics = _metrics(multiprocess=True)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        metrics.first_token(
            "sherlock", "sim-1", "simulator", 0.2, format(span.get_span_context().trace_id, "032x")
        )
    text = generate_openmetrics(metrics.registry).decode()
    assert " # {" not in text
    assert "process_cpu_seconds_total" not in text
    assert "process_cpu_seconds_total" in generate_latest(_metrics().registry).decode()


def test_span_drop_series_exist_at_zero_before_any_drop() -> None:
    metrics = _metrics()
    get = metrics.registry.get_sample_value
    assert (
        get(names.TELEMETRY_DROPPED_TOTAL, {"signal": "spans", "reason": names.DROP_REASON_QUEUE_FULL}) == 0
    )
    metrics.count_dropped("spans", names.DROP_REASON_EXPORT_FAILED, 7)
    assert (
        get(names.TELEMETRY_DROPPED_TOTAL, {"signal": "spans", "reason": names.DROP_REASON_EXPORT_FAILED})
        == 7
    )


def test_role_versions_are_labels_bounded_to_the_versions_loaded() -> None:
    metrics = _metrics()
    for version in ("1.2", "1.3", "1.3", "9.9", "1.3.0", "x" * 40):
        metrics.first_token("sherlock", "sim-1", "simulator", 0.1, None, role_version=version)
        label = metrics.version_label("sherlock", version)
        metrics.observe_http("/v1/chat", "POST", "2xx", "sherlock", 0.1, role_version=label)
    # A version of another role is not a version of this one.
    metrics.first_token("sherlock", "sim-1", "simulator", 0.1, None, role_version=None)
    text = generate_latest(metrics.registry).decode()
    for name in (f"{names.GENAI_TTFT}_count", f"{names.HTTP_REQUEST_DURATION}_count"):
        series = [line for line in text.splitlines() if line.startswith(name)]
        versions = sorted(line.split('role_version="')[1].split('"')[0] for line in series)
        assert versions == sorted(["1.2", "1.3", names.OTHER_ROLE_VERSION]), series
    get = metrics.registry.get_sample_value
    base = {
        "role": "sherlock", "gen_ai_operation_name": "chat", "gen_ai_provider_name": "simulator",
        "gen_ai_request_model": "sim-1",
    }
    assert get(f"{names.GENAI_TTFT}_count", {**base, "role_version": "1.3"}) == 2
    assert get(f"{names.GENAI_TTFT}_count", {**base, "role_version": names.OTHER_ROLE_VERSION}) == 4
    assert metrics.version_label("grimble", "1.2") == names.OTHER_ROLE_VERSION
