"""Multi-window, multi-burn-rate maths (Google SRE workbook, chapter 5; Sloth's windows).

Pure functions over plain numbers and Prometheus duration strings. A burn rate
of 1 spends exactly the error budget over the SLO period; an alert window pair
fires when both its long and short windows burn faster than a factor derived
from how much of the budget it may consume before someone is told.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^([1-9][0-9]*)([smhdw])$")


def parse_duration(text: str) -> int:
    """Seconds in a single-unit Prometheus duration such as `5m`, `6h` or `30d`."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 6h, 1d or 4w")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_duration(seconds: int) -> str:
    """The shortest single-unit Prometheus duration for a whole number of seconds."""
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {seconds} s")
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("unreachable: every whole second count is divisible by 1")


@dataclass(frozen=True, slots=True)
class WindowPair:
    """One row of the workbook table: alert when both windows burn faster than `factor`."""

    severity: str  # "page" or "ticket"
    speed: str  # "quick" or "slow"
    short_window_s: int
    long_window_s: int
    error_budget_percent: float  # share of the period's budget spent in the long window

    def factor(self, period_s: int) -> float:
        return burn_factor(self.error_budget_percent, period_s, self.long_window_s)


def burn_factor(error_budget_percent: float, period_s: int, long_window_s: int) -> float:
    """How many times faster than sustainable the long window must burn.

    Spending `error_budget_percent` of a `period_s` budget within `long_window_s`
    means burning at (percent / 100) × period / window: 2 % in 1 h of 30 d → 14.4.
    Rounded to 6 decimals so 0.02 × 720 prints as 14.4, not 14.399999999999999.
    """
    if period_s <= 0 or long_window_s <= 0:
        raise ValueError("the period and the long window must be positive")
    return round(error_budget_percent / 100.0 * period_s / long_window_s, 6)


# The Google SRE workbook's recommended table for a 30-day period (Sloth's defaults).
DEFAULT_WINDOWS: tuple[WindowPair, ...] = (
    WindowPair("page", "quick", short_window_s=5 * 60, long_window_s=3600, error_budget_percent=2.0),
    WindowPair("page", "slow", short_window_s=30 * 60, long_window_s=6 * 3600, error_budget_percent=5.0),
    WindowPair("ticket", "quick", short_window_s=2 * 3600, long_window_s=86400, error_budget_percent=10.0),
    WindowPair("ticket", "slow", short_window_s=6 * 3600, long_window_s=3 * 86400, error_budget_percent=10.0),
)


def error_budget(objective_percent: float) -> float:
    """The allowed error ratio of an objective given in percent (99.9 → 0.001)."""
    if not 0.0 < objective_percent < 100.0:
        raise ValueError(f"an objective is a percentage strictly between 0 and 100, got {objective_percent}")
    return round(1.0 - objective_percent / 100.0, 12)


def burn_rate(error_ratio: float, objective_percent: float) -> float:
    """How fast an observed error ratio spends the budget (1.0 = exactly on budget)."""
    return error_ratio / error_budget(objective_percent)


def budget_remaining(period_error_ratio: float, objective_percent: float) -> float:
    """Share of the period's error budget left (negative once it is overspent)."""
    return 1.0 - burn_rate(period_error_ratio, objective_percent)


def sli_windows(pairs: tuple[WindowPair, ...], period_s: int) -> list[int]:
    """Every rate window the rules must record: each pair's two windows and the period, sorted."""
    windows = {p.short_window_s for p in pairs} | {p.long_window_s for p in pairs} | {period_s}
    return sorted(windows)


def pair_fires(
    pair: WindowPair, short_ratio: float, long_ratio: float, objective_percent: float, period_s: int
) -> bool:
    """The alert condition evaluated in Python, used to reason about and test the rules."""
    threshold = pair.factor(period_s) * error_budget(objective_percent)
    return short_ratio > threshold and long_ratio > threshold


def detection_time_s(pair: WindowPair, error_ratio: float, objective_percent: float, period_s: int) -> float:
    """Seconds a constant `error_ratio` takes to trip the long window of `pair` (inf if never).

    The long window's average reaches the threshold after long × threshold / ratio.
    """
    threshold = pair.factor(period_s) * error_budget(objective_percent)
    if error_ratio <= threshold:
        return float("inf")
    return pair.long_window_s * threshold / error_ratio
