"""Burn-rate maths: the workbook's factors, budgets and detection times."""

from __future__ import annotations

import math

import pytest

from rolescope.alerts.burn_rate import (
    DEFAULT_WINDOWS,
    budget_remaining,
    burn_factor,
    burn_rate,
    detection_time_s,
    error_budget,
    format_duration,
    pair_fires,
    parse_duration,
    sli_windows,
)

MONTH = 30 * 86400


def test_default_windows_give_the_workbook_factors() -> None:
    table = [
        (p.severity, format_duration(p.long_window_s), format_duration(p.short_window_s), p.factor(MONTH))
        for p in DEFAULT_WINDOWS
    ]
    assert table == [
        ("page", "1h", "5m", 14.4),
        ("page", "6h", "30m", 6.0),
        ("ticket", "1d", "2h", 3.0),
        ("ticket", "3d", "6h", 1.0),
    ]


def test_factor_scales_with_the_period() -> None:
    assert burn_factor(2.0, 28 * 86400, 3600) == pytest.approx(13.44)


def test_recorded_windows_are_sloths_plus_the_period() -> None:
    assert [format_duration(w) for w in sli_windows(DEFAULT_WINDOWS, MONTH)] == [
        "5m",
        "30m",
        "1h",
        "2h",
        "6h",
        "1d",
        "3d",
        "30d",
    ]


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("6h", 21600), ("3d", 259200), ("2w", 1209600)]
)
def test_durations_round_trip(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("bad", ["", "5", "1h30m", "-5m", "0m", "5M"])
def test_malformed_durations_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_budget_and_burn_rate() -> None:
    assert error_budget(99.9) == pytest.approx(0.001)
    assert burn_rate(0.0144, 99.9) == pytest.approx(14.4)
    assert budget_remaining(0.0005, 99.9) == pytest.approx(0.5)
    assert budget_remaining(0.002, 99.9) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        error_budget(100.0)


def test_page_pair_needs_both_windows_above_the_threshold() -> None:
    page_quick = DEFAULT_WINDOWS[0]
    assert pair_fires(page_quick, 0.02, 0.02, 99.9, MONTH)
    assert not pair_fires(page_quick, 0.02, 0.01, 99.9, MONTH)  # long window still under 14.4×
    assert not pair_fires(page_quick, 0.01, 0.02, 99.9, MONTH)  # short window has recovered


def test_total_outage_pages_within_a_minute_and_a_slow_leak_never() -> None:
    page_quick = DEFAULT_WINDOWS[0]
    assert detection_time_s(page_quick, 1.0, 99.9, MONTH) == pytest.approx(3600 * 0.0144)
    assert math.isinf(detection_time_s(page_quick, 0.005, 99.9, MONTH))
