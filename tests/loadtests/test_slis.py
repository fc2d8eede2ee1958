"""SLIs from full-resolution samples: percentiles, error ratio, throughput, goodput."""

from __future__ import annotations

import numpy as np
import pytest

from rolescope.loadtests.samples import RequestSample
from rolescope.loadtests.slis import compute_slis, distribution, meets_slo


def _sample(
    e2e: float, ttft: float | None = 0.1, ok: bool = True, start: float = 0.0, tokens: int = 10
) -> RequestSample:
    return RequestSample(
        name="stream",
        kind="stream",
        intended_start=start,
        start=start,
        ok=ok,
        status=200 if ok else 500,
        e2e_s=e2e,
        ttft_s=ttft,
        tpot_s=0.02 if ok else None,
        itl_s=[0.02, 0.03] if ok else [],
        output_tokens=tokens if ok else 0,
    )


def test_percentiles_are_exact_order_statistics_not_buckets() -> None:
    values = [0.001 * i for i in range(1, 1001)]
    dist = distribution(values)
    assert dist.p50 == pytest.approx(float(np.percentile(values, 50)))
    assert dist.p99 == pytest.approx(0.99001)
    assert dist.max == pytest.approx(1.0)
    assert dist.count == 1000


def test_goodput_needs_success_and_every_objective_at_once() -> None:
    limits = {"ttft": 0.5, "e2e": 5.0}
    assert meets_slo(_sample(1.0, 0.2), limits)
    assert not meets_slo(_sample(6.0, 0.2), limits)
    assert not meets_slo(_sample(1.0, 0.7), limits)
    assert not meets_slo(_sample(1.0, 0.2, ok=False), limits)
    # A JSON answer has no token stream: its first token is its whole answer.
    assert not meets_slo(_sample(0.8, None), limits)


def test_slis_document() -> None:
    samples = [
        _sample(1.0, 0.1, start=0.0),
        _sample(2.0, 0.9, start=1.0),
        _sample(0.5, ok=False, start=2.0),
        _sample(1.0, 0.2, start=3.0),
    ]
    slis = compute_slis(samples, {"ttft": 0.5, "e2e": 5.0})
    assert slis["requests"] == 4 and slis["failures"] == 1
    assert slis["error_ratio"] == 0.25
    assert slis["goodput"] == 0.5
    assert slis["duration_s"] == pytest.approx(4.0)
    assert slis["throughput_rps"] == pytest.approx(1.0)
    assert slis["output_tokens_per_s"] == pytest.approx(30 / 4.0)
    assert slis["e2e_s"]["count"] == 3  # failures do not pollute latency
    assert slis["itl_s"]["count"] == 6
    assert set(slis["ttft_s"]) == {"p50", "p90", "p95", "p99", "max", "mean", "count"}
    assert slis["thresholds_s"] == {"ttft": 0.5, "e2e": 5.0}


def test_no_samples_gives_zeros() -> None:
    slis = compute_slis([], duration_s=None)
    assert slis["requests"] == 0 and slis["goodput"] == 0.0 and slis["e2e_s"]["count"] == 0
