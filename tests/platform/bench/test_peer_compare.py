"""Percentiles, agreement with the reference tool, and error against a known truth."""

from __future__ import annotations

import pytest

from rolescope.bench.peer_compare import (
    Difference,
    ToolFigures,
    all_within,
    differences,
    flat_figures,
    mock_truth_ms,
    percentiles_ms,
    tolerance_ms,
    truth_errors,
)


def test_percentiles_interpolate_between_the_nearest_samples() -> None:
    found = percentiles_ms([float(v) for v in range(1, 101)])
    assert found == pytest.approx({"p50": 50.5, "p90": 90.1, "p99": 99.01})


def test_no_samples_give_no_percentiles() -> None:
    assert percentiles_ms([]) == {}
    assert percentiles_ms([float("nan")]) == {}


def test_tolerance_is_ten_percent_or_three_ms_whichever_is_larger() -> None:
    assert tolerance_ms(150.0) == pytest.approx(15.0)
    assert tolerance_ms(20.0) == 3.0


def test_differences_are_judged_against_the_tolerance_of_the_reference() -> None:
    assert Difference("ttft", "p50", 164.0, 150.0).within
    assert not Difference("ttft", "p50", 166.0, 150.0).within
    assert Difference("itl", "p50", 22.9, 20.0).within
    assert not Difference("itl", "p50", 23.1, 20.0).within
    assert Difference("itl", "p50", 22.0, 20.0).delta_share == pytest.approx(0.10)


def test_only_percentiles_both_tools_have_are_compared() -> None:
    mine = {"ttft": {"p50": 10.0, "p90": 12.0}, "itl": {"p50": 2.0}}
    reference = {"ttft": {"p50": 11.0}, "e2e": {"p50": 100.0}}
    found = differences(mine, reference)
    assert [(d.figure, d.percentile) for d in found] == [("ttft", "p50")]
    assert all_within(found)
    assert not all_within([])


def test_truth_of_a_fixed_timing_server() -> None:
    assert mock_truth_ms(150, 20, 40) == {"ttft": 150, "itl": 20, "e2e": 930}


def test_errors_against_truth_per_figure_and_percentile() -> None:
    errors = truth_errors({"ttft": {"p50": 154.6}, "itl": {"p50": 20.5}}, {"ttft": 150.0, "itl": 20.0})
    assert errors["ttft"]["p50"] == pytest.approx(4.6)
    assert errors["itl"]["p50"] == pytest.approx(0.5)


def test_tool_figures_count_requests_from_their_end_to_end_samples() -> None:
    figures = ToolFigures("x", {"ttft": [1.0, 2.0], "itl": [], "e2e": [3.0, 4.0, 5.0]}, failures=1)
    assert figures.requests == 3
    assert figures.percentiles()["itl"] == {}


def test_flat_figures_name_tool_figure_and_percentile() -> None:
    assert flat_figures("service.aiperf", {"ttft": {"p50": 1.5}}) == {"service.aiperf.ttft.p50_ms": 1.5}
