"""The pure gate on synthetic run data: absolute SLO checks, A/B statistics, memory, verdict."""

from __future__ import annotations

import random

import pytest

from rolescope.gate.absolute import absolute_checks
from rolescope.gate.judge import headline, judge
from rolescope.gate.memory_check import memory_checks
from rolescope.gate.model import FunctionShift, GatePolicy, Objective, RelativeTolerance, RunData
from rolescope.gate.relative import holm_adjust, relative_checks
from rolescope.rundir import RequestSample

POLICY = GatePolicy(
    objectives=(
        Objective("availability", "error_ratio", 0.999),
        Objective("ttft", "latency", 0.99, "ttft", 0.5),
        Objective("timeouts", "error_ratio", 0.999, statuses=(504,)),
        Objective("goodput", "goodput", 0.95),
    ),
    relative=(RelativeTolerance("ttft_p95", 0.10), RelativeTolerance("error_ratio", 0.005, absolute=True)),
)


def make_run(
    seed: int, n: int = 200, ttft: float = 0.2, error_every: int = 0, status: int = 500, name: str = "run"
) -> RunData:
    rng = random.Random(seed)
    samples = []
    for i in range(n):
        failed = error_every > 0 and i % error_every == 0
        first = ttft * rng.uniform(0.9, 1.1)
        samples.append(
            RequestSample(
                name="stream",
                kind="stream",
                intended_start=1000.0 + i * 0.05,
                start=1000.0 + i * 0.05,
                ok=not failed,
                status=status if failed else 200,
                ttft_s=None if failed else first,
                itl_s=[] if failed else [rng.uniform(0.02, 0.03) for _ in range(5)],
                e2e_s=first + 0.15,
                output_tokens=0 if failed else 6,
            )
        )
    return RunData(path=f"{name}-{seed}", samples=samples, service={"cpu_seconds": 1.0})


def by_name(checks: list) -> dict:
    return {c.name: c for c in checks}


def test_latency_objective_counts_every_request_against_the_threshold() -> None:
    fast = absolute_checks(POLICY.objectives, [make_run(1, ttft=0.2)])
    slow = absolute_checks(POLICY.objectives, [make_run(1, ttft=0.6)])
    assert by_name(fast)["ttft"].passed and by_name(fast)["ttft"].figure == 1.0
    check = by_name(slow)["ttft"]
    assert not check.passed
    assert check.figure == 0.0 and check.margin == pytest.approx(-0.99)
    assert "short of the objective" in check.message
    assert check.statistics["p95_s"] > 0.5


def test_error_ratio_and_goodput_fail_on_two_percent_errors() -> None:
    checks = by_name(absolute_checks(POLICY.objectives, [make_run(2, error_every=50)]))
    assert not checks["availability"].passed
    assert checks["availability"].figure == pytest.approx(0.02)
    assert checks["availability"].statistics["failures_by_status"] == {"500": 4}
    # 500s are not timeouts: the timeout objective only counts 504s.
    assert checks["timeouts"].passed
    assert checks["goodput"].passed  # 98 % good ≥ 95 %


def test_timeouts_count_only_504() -> None:
    checks = by_name(absolute_checks(POLICY.objectives, [make_run(3, error_every=20, status=504)]))
    assert not checks["timeouts"].passed
    assert checks["timeouts"].statistics["failed"] == 10


def test_holm_adjustment_is_step_down_and_monotone() -> None:
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjust([]) == []


def test_ab_flags_a_significant_change_beyond_tolerance() -> None:
    reference = [make_run(s, ttft=0.20) for s in range(5)]
    candidate = [make_run(s + 10, ttft=0.25) for s in range(5)]
    checks, notes = relative_checks(POLICY.relative, candidate, reference, 0.05)
    ttft = by_name(checks)["ab:ttft_p95"]
    assert not ttft.passed
    assert ttft.figure == pytest.approx(0.25, abs=0.05)
    assert ttft.statistics["significant"] and ttft.statistics["p_adjusted"] < 0.05
    assert by_name(checks)["ab:error_ratio"].passed
    assert notes == []


def test_ab_passes_a_significant_change_within_tolerance() -> None:
    reference = [make_run(s, ttft=0.20) for s in range(5)]
    candidate = [make_run(s + 10, ttft=0.21) for s in range(5)]
    ttft = by_name(relative_checks(POLICY.relative, candidate, reference, 0.05)[0])["ab:ttft_p95"]
    assert ttft.passed and ttft.figure < 0.10


def test_ab_with_too_few_runs_cannot_fail_and_says_so() -> None:
    reference = [make_run(s, ttft=0.2) for s in range(2)]
    candidate = [make_run(s + 10, ttft=0.4) for s in range(2)]
    checks, notes = relative_checks(POLICY.relative, candidate, reference, 0.05)
    assert all(c.passed for c in checks)
    assert any("run more" in note for note in notes)


def test_ab_error_ratio_uses_absolute_points() -> None:
    reference = [make_run(s) for s in range(5)]
    candidate = [make_run(s + 10, error_every=50) for s in range(5)]
    errors = by_name(relative_checks(POLICY.relative, candidate, reference, 0.05)[0])["ab:error_ratio"]
    assert not errors.passed
    assert errors.figure == pytest.approx(0.02)


def test_identical_runs_pass_every_relative_check() -> None:
    runs = [make_run(s) for s in range(5)]
    checks, _ = relative_checks(POLICY.relative, runs, runs, 0.05)
    assert all(c.passed for c in checks)
    assert all(c.statistics["p_adjusted"] > 0.05 for c in checks)


def test_memory_checks_apply_their_own_tolerances() -> None:
    baseline = {"allocations_per_request": 1000.0, "bytes_per_request": 100_000.0}
    within = memory_checks(
        {"allocations_per_request": 1040.0, "bytes_per_request": 103_000.0}, baseline, 0.05, 0.04
    )
    assert all(c.passed for c in within)
    over = by_name(
        memory_checks(
            {"allocations_per_request": 1100.0, "bytes_per_request": 103_000.0}, baseline, 0.05, 0.04
        )
    )
    assert not over["memory:allocations_per_request"].passed
    assert over["memory:allocations_per_request"].figure == pytest.approx(0.10)
    assert over["memory:bytes_per_request"].passed


def test_verdict_names_failures_and_suspects_in_order() -> None:
    shifts = [
        FunctionShift("busy_loop (sim.py:10)", 0.01, 0.20),
        FunctionShift("render (chat.py:5)", 0.10, 0.102),
        FunctionShift("encode (json.py:1)", 0.05, 0.08),
    ]
    verdict = judge(POLICY, [make_run(1, ttft=0.6)], function_shifts=shifts)
    assert not verdict.passed
    assert [c.name for c in verdict.failed] == ["ttft", "goodput"]
    assert headline(verdict).startswith("FAIL — 2 of 4 checks failed: ttft, goodput")
    assert [s.function for s in verdict.suspects] == ["busy_loop (sim.py:10)", "encode (json.py:1)"]
    passing = judge(POLICY, [make_run(1)])
    assert passing.passed and headline(passing) == "PASS — all 4 checks met"


def test_runs_without_service_figures_skip_cpu_and_say_so() -> None:
    tolerances = (RelativeTolerance("cpu_per_token_ms", 0.10), RelativeTolerance("ttft_p95", 0.10))
    reference = [make_run(s) for s in range(5)]
    candidate = [make_run(s + 10) for s in range(5)]
    for run in reference + candidate:
        run.service = {}  # a plain `rolescope load` directory: no service CPU recorded
    checks, notes = relative_checks(tolerances, candidate, reference, 0.05)
    assert [c.name for c in checks] == ["ab:ttft_p95"]
    assert notes == ["cpu_per_token_ms: not measured on both sides, not compared"]
