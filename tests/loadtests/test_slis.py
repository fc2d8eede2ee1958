"""SLIs from full-resolution samples: percentiles, error ratio, throughput, goodput."""

from __future__ import annotations

import numpy as np
import pytest

from rolescope.gate.policy import load_policy
from rolescope.loadtests.slis import compute_slis, distribution
from rolescope.rundir import RequestSample

LATENCY = load_policy().latency_objectives  # the bundled spec: TTFT ≤ 0.5 s, end-to-end ≤ 5 s


def _sample(
    e2e: float, ttft: float | None = 0.1, ok: bool = True, start: float = 0.0, tokens: int = 10
) -> RequestSample:
    return RequestSample(
        name="stream" if ttft is not None else "chat",
        kind="stream" if ttft is not None else "chat",
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


def test_goodput_needs_success_and_every_objective_that_applies() -> None:
    def goodput(sample: RequestSample) -> float:
        return float(compute_slis([sample], LATENCY)["goodput"])

    assert goodput(_sample(1.0, 0.2)) == 1.0
    assert goodput(_sample(6.0, 0.2)) == 0.0
    assert goodput(_sample(1.0, 0.7)) == 0.0
    assert goodput(_sample(1.0, 0.2, ok=False)) == 0.0
    # A JSON answer has no token stream: the end-to-end objective judges it, not the TTFT one.
    assert goodput(_sample(0.8, None)) == 1.0
    assert goodput(_sample(5.5, None)) == 0.0


def test_slis_document() -> None:
    samples = [
        _sample(1.0, 0.1, start=0.0),
        _sample(2.0, 0.9, start=1.0),
        _sample(0.5, ok=False, start=2.0),
        _sample(1.0, 0.2, start=3.0),
    ]
    slis = compute_slis(samples, LATENCY)
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
    assert slis["input_tokens_mean"] is None  # no sample said how long its prompt was


def test_mean_input_tokens_counts_only_successful_requests_that_reported_them() -> None:
    samples = [_sample(1.0), _sample(1.0), _sample(1.0), _sample(1.0, ok=False)]
    samples[0].input_tokens, samples[1].input_tokens, samples[3].input_tokens = 40, 60, 1000
    assert compute_slis(samples)["input_tokens_mean"] == pytest.approx(50.0)


def test_no_samples_gives_zeros() -> None:
    slis = compute_slis([], LATENCY, duration_s=None)
    assert slis["requests"] == 0 and slis["goodput"] == 0.0 and slis["e2e_s"]["count"] == 0
