"""Overload at twice the measured capacity: refusals are 503 `overloaded`, nothing else fails.

The latency figures (refusal p99 under 50 ms, admitted requests within the SLO) are measured
by `python -m rolescope.reliability.overload`, not asserted here: a shared machine's timing
is not a test. What is asserted is behaviour, on a short real run, and the arithmetic.
"""

from __future__ import annotations

from pathlib import Path

import psutil

from rolescope.gate.model import Objective
from rolescope.procstats import process_stats
from rolescope.reliability.overload import (
    PROFILES,
    latency_objectives,
    overload_profile,
    summarise_phase,
    verdict,
)
from rolescope.rundir import RequestSample

OBJECTIVES = (Objective("ttft", "latency", 0.99, "ttft", 0.5), Objective("e2e", "latency", 0.99, "e2e", 5.0))


def _sample(
    at: float,
    status: int,
    e2e_s: float,
    *,
    ttft_s: float | None = None,
    lag_s: float = 0.0,
    error: str | None = None,
) -> RequestSample:
    ok = status == 200 and error is None
    if status == 503 and error is None:
        error = "HTTP 503: overloaded the service is at its limit"
    return RequestSample(
        name="stream",
        kind="stream",
        intended_start=at,
        start=at + lag_s,
        ok=ok,
        status=status,
        e2e_s=e2e_s,
        ttft_s=ttft_s,
        error=error,
    )


def test_refusals_other_5xx_and_failures_are_told_apart() -> None:
    samples = [
        _sample(0.0, 200, 0.2, ttft_s=0.05),
        _sample(3.0, 503, 0.010),
        _sample(3.1, 503, 0.5, error="HTTP 503: session_store_unavailable"),  # not the limiter's
        _sample(3.2, 500, 0.1, error="HTTP 500: internal"),
        _sample(3.3, 0, 30.0, error="no response"),
        _sample(3.4, 200, 0.3, ttft_s=0.1, error="in-stream error: inference_failed"),
    ]
    figures = summarise_phase(samples, OBJECTIVES)
    assert figures["requests"] == 6
    assert figures["admitted"] == 1
    assert figures["refused_503"] == 1
    assert figures["other_5xx"] == 2
    assert figures["failed_requests"] == 2
    problems = verdict(figures, OBJECTIVES)
    assert any("5xx other than the 503" in p for p in problems)
    assert any("failed requests" in p for p in problems)


def test_latencies_skip_the_warm_up_but_counts_do_not() -> None:
    samples = [_sample(0.1 * i, 503, 0.900) for i in range(5)]  # the connection burst at the start
    samples += [_sample(2.0 + i / 100, 503, 0.004 + i / 100_000, lag_s=0.001) for i in range(200)]
    samples += [_sample(2.5 + i / 100, 200, 0.3, ttft_s=0.02) for i in range(100)]
    figures = summarise_phase(samples, OBJECTIVES, warmup_s=2.0)
    assert figures["refused_503"] == 205
    assert figures["refusal_p99_ms"] < 10
    assert figures["refusal_p99_with_warmup_ms"] > 10
    # Timed from the real send, the generator's 1 ms lag is not the service's.
    assert figures["refusal_from_send_p99_ms"] < figures["refusal_p99_ms"]
    assert figures["admitted_ttft_within_slo_pct"] == 100.0
    assert verdict(figures, OBJECTIVES) == []


def test_the_verdict_names_each_broken_promise() -> None:
    first = [_sample(0.0, 200, 0.2, ttft_s=0.05)]  # the phase starts here; 3 s on is past the warm-up
    slow = first + [_sample(3.0 + i / 100, 503, 0.080) for i in range(100)]
    late = [_sample(3.0 + i / 100, 200, 1.0, ttft_s=0.9 if i < 5 else 0.1) for i in range(100)]
    problems = verdict(summarise_phase(slow + late, OBJECTIVES), OBJECTIVES)
    assert any(p.startswith("refusal p99 80.0 ms") for p in problems), problems
    assert any(p.startswith("admitted ttft within 0.5 s: 95.00 %") for p in problems), problems
    nothing_refused = verdict(summarise_phase(first + late[5:], OBJECTIVES), OBJECTIVES)
    assert nothing_refused == ["nothing was refused: the load did not exceed the limit"]


def test_objectives_come_from_the_slo_spec() -> None:
    objectives = latency_objectives()
    figures = [(o.metric, o.threshold_s, o.objective) for o in objectives]
    assert figures == [("ttft", 0.5, 0.99), ("e2e", 5.0, 0.99)]


def test_twice_the_capacity_is_refused_with_503_and_nothing_else_fails(tmp_path: Path) -> None:
    figures = overload_profile(tmp_path, PROFILES["cpu-bound"], seconds=4.0, limit=8)
    prefix = "overload_cpu_bound"
    assert figures[f"{prefix}_capacity_rps"] > 0
    assert figures[f"{prefix}_storm_admitted"] > 0
    assert figures[f"{prefix}_storm_refused_503"] > 0
    # Every 503 the clients saw is one the admission limit counted (and so carried Retry-After).
    assert figures[f"{prefix}_storm_refused_503"] == figures[f"{prefix}_storm_rejected_by_service"]
    assert figures[f"{prefix}_storm_other_5xx"] == 0
    assert figures[f"{prefix}_storm_failed_requests"] == 0
    assert figures[f"{prefix}_calm_failed_requests"] == 0
    assert figures[f"{prefix}_pinned"] == 1.0


def test_a_pinned_service_runs_only_on_its_cpus(tmp_path: Path) -> None:
    from rolescope.reliability.process import ManagedService, write_test_roles

    service = ManagedService(
        tmp_path, {"ROLESCOPE_ROLES_PATH": str(write_test_roles(tmp_path / "roles"))}, cpus="0"
    )
    service.start()
    try:
        assert psutil.Process(service.pid).cpu_affinity() == [0]
        assert process_stats(service.pid).threads >= 1
    finally:
        service.terminate(15)
