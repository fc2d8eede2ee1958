"""The soak's slope: least squares per hour, flat series read as flat."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from rolescope.reliability.soak import Samples, progress_line, slope_per_hour, write_series


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


def test_every_sample_is_kept_as_csv(tmp_path: Path) -> None:
    samples = Samples(
        t=[0.0, 5.0], rss_mb=[68.4, 68.41], open_files=[19, 21], threads=[6, 6], metrics_ms=[7.9, 6.5]
    )
    out = tmp_path / "series.csv"
    write_series(out, samples)
    rows = list(csv.DictReader(out.open()))
    assert [row["t_s"] for row in rows] == ["0.0", "5.0"]
    assert rows[1] == {
        "t_s": "5.0",
        "rss_mb": "68.41",
        "open_files": "21",
        "threads": "6",
        "metrics_ms": "6.50",
    }


def test_progress_names_time_outcomes_and_the_latest_sample() -> None:
    samples = Samples(
        t=[0.0, 60.0], rss_mb=[68.0, 68.25], open_files=[19, 19], threads=[6, 6], metrics_ms=[7, 6.54]
    )
    line = progress_line(120.4, 60, 7320, 1, samples)
    assert line == "soak: 2/60 min, 7,320 ok, 1 failed, RSS 68.2 MB, /metrics 6.5 ms"
    assert progress_line(60.0, 10, 0, 0, Samples()) == "soak: 1/10 min, 0 ok, 0 failed"
