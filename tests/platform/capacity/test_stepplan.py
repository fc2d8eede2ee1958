"""Step length and early stop as pure functions."""

from __future__ import annotations

import pytest

from rolescope.capacity.stepplan import (
    StepSoFar,
    broken_beyond_recovery,
    completions_lag,
    error_budget,
    over_saturated,
    plan_step,
    requests_needed,
    stop_reason,
)
from rolescope.gate.policy import load_policy


def test_the_bundled_spec_needs_a_thousand_requests_for_its_availability_budget() -> None:
    policy = load_policy()
    assert requests_needed(policy) == 1000
    assert error_budget(policy) == ("chat-availability", pytest.approx(0.001))


def test_a_step_is_long_enough_for_its_requests_after_warm_up_within_the_limits() -> None:
    plan = plan_step(50.0, 1000, warmup_s=1.0, max_duration_s=60)
    assert plan.duration_s == pytest.approx(21.0)
    assert plan.long_enough
    short = plan_step(5.0, 1000, max_duration_s=30)
    assert short.duration_s == 30 and not short.long_enough
    assert plan_step(1000.0, 100, min_duration_s=3).duration_s == 3


def test_failures_beyond_the_budget_of_the_whole_planned_step_stop_it() -> None:
    plan = plan_step(100.0, 1000, warmup_s=0, max_duration_s=10)  # 1000 requests planned
    budget = ("availability", 0.01)  # 10 failures allowed in the step
    assert broken_beyond_recovery(StepSoFar(2.0, 200, 10, ()), plan, budget) is None
    reason = broken_beyond_recovery(StepSoFar(2.0, 200, 11, ()), plan, budget)
    assert reason is not None and "availability" in reason and "11 failures" in reason


def test_a_queue_that_keeps_growing_is_over_saturation() -> None:
    growing = [(t * 0.5, 4.0 * t * 0.5) for t in range(12)]  # +4 in flight per second at 10 req/s
    assert over_saturated(StepSoFar(6.0, 0, 0, growing), rate=10.0) is not None


def test_a_steady_queue_with_noise_is_not_over_saturation() -> None:
    steady = [(t * 0.5, 20.0 + (3 if t % 2 else -3)) for t in range(20)]
    assert over_saturated(StepSoFar(10.0, 0, 0, steady), rate=40.0) is None


def test_too_short_a_window_decides_nothing() -> None:
    growing = [(t * 0.25, 10.0 * t) for t in range(8)]  # under SATURATION_WINDOW_S
    plan = plan_step(10.0, 100)
    assert stop_reason(StepSoFar(2.0, 0, 0, growing), plan, None) is None


def test_a_queue_filling_up_to_its_steady_level_is_not_over_saturation() -> None:
    # 2 s per request at 10 req/s: in flight ramps to 20 over the first 2 s, then holds.
    ramp = [(t * 0.5, min(20.0, 10.0 * t * 0.5)) for t in range(14)]
    assert over_saturated(StepSoFar(7.0, 0, 0, ramp, settle_s=2.0), rate=10.0) is None


def test_answers_falling_behind_arrivals_with_a_full_pool_is_over_saturation() -> None:
    # 40 req/s offered, 15 answered per second, in flight stuck at the pool's size.
    completed = [(t * 0.5, 15.0 * t * 0.5) for t in range(12)]
    capped = [(t * 0.5, 204.0) for t in range(12)]
    reason = completions_lag(StepSoFar(6.0, 0, 0, capped, completed=completed), rate=40.0)
    assert reason is not None and reason.startswith("over-saturated")


def test_answers_keeping_up_with_arrivals_are_not_over_saturation() -> None:
    completed = [(t * 0.5, 38.0 * t * 0.5) for t in range(12)]
    steady = [(t * 0.5, 12.0) for t in range(12)]
    assert completions_lag(StepSoFar(6.0, 0, 0, steady, completed=completed), rate=40.0) is None
