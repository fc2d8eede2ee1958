"""The load generator's metrics object, read back from its registry (no Locust involved)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from rolescope.exporters import names
from rolescope.exporters.locust_exporter import LoadMetrics
from rolescope.rundir import RequestSample


def _sample(ok: bool, ttft: float | None, e2e: float) -> RequestSample:
    return RequestSample(
        name="stream", kind="stream", intended_start=0.0, start=0.0, ok=ok, status=200, e2e_s=e2e, ttft_s=ttft
    )


def test_counts_and_histograms_from_samples() -> None:
    registry = CollectorRegistry()
    metrics = LoadMetrics(registry)
    metrics.track_users(lambda: 7.0)
    metrics.observe(_sample(True, 0.03, 0.9))
    metrics.observe(_sample(True, 0.3, 1.5))
    metrics.observe(_sample(False, None, 0.1))
    labels = {"name": "stream", "method": "POST"}
    assert registry.get_sample_value(names.LOAD_REQUESTS_TOTAL, labels) == 3
    assert registry.get_sample_value(names.LOAD_FAILURES_TOTAL, labels) == 1
    assert registry.get_sample_value(names.LOAD_USERS) == 7
    assert registry.get_sample_value(f"{names.LOAD_TTFT}_bucket", {"name": "stream", "le": "0.04"}) == 1
    assert registry.get_sample_value(f"{names.LOAD_TTFT}_count", {"name": "stream"}) == 2
    assert registry.get_sample_value(f"{names.LOAD_REQUEST_DURATION}_sum", {"name": "stream"}) == 2.4
    text = generate_latest(registry).decode()
    assert f"# TYPE {names.LOAD_TTFT} histogram" in text
