"""The capacity search as a pure function: probe, bracket, bisect, stop."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rolescope.capacity.search import (
    Done,
    NextStep,
    SearchConfig,
    StepResult,
    bracket_of,
    next_step,
    steps_needed,
)


def _search(
    truth: float, config: SearchConfig, probes_conclusive: bool = False
) -> tuple[Done, list[StepResult]]:
    """Drive the search against a monotone service: every rate at or below `truth` holds."""
    steps: list[StepResult] = []
    while True:
        decision = next_step(steps, config)
        if isinstance(decision, Done):
            return decision, steps
        conclusive = probes_conclusive or decision.phase != "probe"
        steps.append(StepResult(decision.rate, decision.rate <= truth, conclusive, decision.phase))
        assert len(steps) <= 200, "the search did not terminate"


@settings(max_examples=300, deadline=None)
@given(
    truth=st.floats(min_value=0.2, max_value=2000.0),
    start=st.floats(min_value=0.1, max_value=4000.0),
    precision=st.sampled_from([0.02, 0.05, 0.1]),
    probes_conclusive=st.booleans(),
)
def test_search_brackets_and_converges_on_a_monotone_service(
    truth: float, start: float, precision: float, probes_conclusive: bool
) -> None:
    config = SearchConfig(start_rate=start, precision=precision, max_steps=100, time_budget_s=math.inf)
    done, steps = _search(truth, config, probes_conclusive)
    assert done.reason == "converged"
    low, high = done.bracket.low, done.bracket.high
    assert low is not None and high is not None
    assert low <= truth < high
    assert high / low - 1 <= precision
    assert len(steps) <= steps_needed(start, truth, config)


def test_probe_grows_geometrically_from_the_start_rate() -> None:
    config = SearchConfig(start_rate=2.0)
    steps = [StepResult(2.0, True, False, "probe"), StepResult(4.0, True, False, "probe")]
    assert next_step(steps, config) == NextStep(8.0, "probe")


def test_a_passing_short_probe_is_confirmed_by_a_full_step_before_it_bounds_the_capacity() -> None:
    config = SearchConfig(start_rate=2.0)
    steps = [StepResult(2.0, True, False, "probe"), StepResult(4.0, False, True, "probe")]
    assert bracket_of(steps).low is None
    assert next_step(steps, config) == NextStep(2.0, "bracket")


def test_a_confirmation_that_fails_moves_the_bracket_down() -> None:
    config = SearchConfig(start_rate=2.0)
    steps = [
        StepResult(2.0, True, False, "probe"),
        StepResult(4.0, False, True, "probe"),
        StepResult(2.0, False, True, "bracket"),
    ]
    assert next_step(steps, config) == NextStep(1.0, "bracket")


def test_bisection_is_geometric() -> None:
    config = SearchConfig(start_rate=2.0)
    steps = [StepResult(2.0, True, True, "probe"), StepResult(8.0, False, True, "probe")]
    decision = next_step(steps, config)
    assert isinstance(decision, NextStep)
    assert decision.rate == pytest.approx(4.0)
    assert decision.phase == "bisect"


def test_the_time_budget_ends_the_search_with_the_bracket_so_far() -> None:
    config = SearchConfig(start_rate=2.0, time_budget_s=60)
    steps = [StepResult(2.0, True, True, "probe"), StepResult(8.0, False, True, "probe")]
    decision = next_step(steps, config, elapsed_s=50, next_step_s=20)
    assert decision == Done("time budget", bracket_of(steps))
    assert decision.bracket.low == 2.0


def test_a_service_that_holds_nothing_is_reported_as_such() -> None:
    config = SearchConfig(start_rate=1.0, min_rate=0.25)
    done, steps = _search(0.01, config)
    assert done.reason == "nothing held"
    assert done.bracket.low is None
    assert min(s.rate for s in steps) == pytest.approx(0.25)


def test_a_service_above_the_maximum_rate_is_reported_as_such() -> None:
    config = SearchConfig(start_rate=10.0, max_rate=100.0)
    done, _ = _search(1e6, config)
    assert done.reason == "above max rate"
    assert done.bracket.low == 100.0


def test_a_noisy_pass_above_a_failure_does_not_widen_the_bracket() -> None:
    steps = [
        StepResult(4.0, True, True, "bracket"),
        StepResult(8.0, False, True, "bracket"),
        StepResult(10.0, True, True, "bisect"),
    ]
    bracket = bracket_of(steps)
    assert (bracket.low, bracket.high) == (4.0, 8.0)


def test_bad_configuration_names_every_problem() -> None:
    with pytest.raises(ValueError) as caught:
        SearchConfig(start_rate=0.0, precision=2.0, growth=1.0)
    message = str(caught.value)
    assert "precision" in message and "growth" in message and "start_rate" in message
