"""The soak's slope: least squares per hour, flat series read as flat."""

from __future__ import annotations

import pytest

from rolescope.reliability.soak import slope_per_hour


def test_a_steady_climb_is_reported_per_hour() -> None:
    t = [float(s) for s in range(0, 600, 5)]
    rss = [100.0 + s / 3600.0 * 2.0 for s in t]  # +2 MB per hour
    assert slope_per_hour(t, rss) == pytest.approx(2.0)


def test_noise_around_a_flat_line_has_no_slope() -> None:
    t = [float(s) for s in range(0, 3600, 5)]
    rss = [100.0 + (0.5 if i % 2 else -0.5) for i in range(len(t))]
    assert abs(slope_per_hour(t, rss)) < 0.01


def test_too_few_points_give_zero() -> None:
    assert slope_per_hour([0.0, 5.0], [1.0, 9.0]) == 0.0
