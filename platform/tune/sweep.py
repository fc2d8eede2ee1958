"""Sweeping service settings: the grid of trials, and which trial meets every SLO at the least cost.

Pure: parsing `KEY=V1,V2` arguments, expanding the grid, ranking trial results.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rolescope.errors import ConfigError

# Service settings a sweep may vary. `memory_window` is the roles' memory_policy.max_turns
# (how many turns each session keeps), applied to copies of the role files.
SWEEPABLE: dict[str, type] = {
    "workers": int,
    "concurrency_limit": int,
    "memory_window": int,
    "sqlite_synchronous": str,
}
MAX_TRIALS = 64


def parse_sweep(arguments: Sequence[str]) -> dict[str, list[Any]]:
    """`["workers=1,2", "memory_window=5,20"]` → `{"workers": [1, 2], "memory_window": [5, 20]}`."""
    grid: dict[str, list[Any]] = {}
    for argument in arguments:
        key, sep, raw = argument.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not raw.strip():
            raise ConfigError(f"--sweep {argument!r}: expected KEY=V1,V2,… (e.g. workers=1,2)")
        if key not in SWEEPABLE:
            raise ConfigError(
                f"--sweep {argument!r}: {key!r} cannot be swept; choose from {', '.join(SWEEPABLE)}"
            )
        if key in grid:
            raise ConfigError(f"--sweep: {key!r} is given twice")
        convert = SWEEPABLE[key]
        try:
            values = [convert(v.strip()) for v in raw.split(",") if v.strip()]
        except ValueError as exc:
            raise ConfigError(f"--sweep {argument!r}: every value of {key} must be a whole number") from exc
        grid[key] = list(dict.fromkeys(values))
    return grid


def expand_grid(grid: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination, in a stable order (the first key varies slowest)."""
    keys = list(grid)
    combos = [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]
    if len(combos) > MAX_TRIALS:
        raise ConfigError(f"--sweep asks for {len(combos)} trials; at most {MAX_TRIALS} are allowed")
    return combos


@dataclass
class TrialResult:
    """One trial's settings, verdict and costs."""

    settings: dict[str, Any]
    passed: bool
    failed_checks: list[str]
    goodput_rps: float
    cpu_cores: float  # service CPU seconds per wall second, over the measured runs
    memory_per_session_bytes: float  # peak resident memory of the service divided by sessions served
    directory: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def goodput_per_cpu(self) -> float:
        return self.goodput_rps / self.cpu_cores if self.cpu_cores > 0 else math.nan


def best_trial(trials: Sequence[TrialResult]) -> TrialResult | None:
    """The passing trial with the most goodput per CPU; less memory per session breaks near-ties.

    Goodput per CPU within 5 % counts as a tie: run-to-run noise is of that
    order, and memory is the steadier figure.
    """
    passing = [t for t in trials if t.passed and not math.isnan(t.goodput_per_cpu)]
    if not passing:
        return None
    top = max(t.goodput_per_cpu for t in passing)
    contenders = [t for t in passing if t.goodput_per_cpu >= 0.95 * top]
    return min(contenders, key=lambda t: (t.memory_per_session_bytes, -t.goodput_per_cpu))


def settings_label(settings: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"
