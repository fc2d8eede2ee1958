"""The sweep's grid and its choice of the cheapest trial that meets every SLO."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rolescope.errors import ConfigError
from rolescope.tune.sweep import TrialResult, best_trial, expand_grid, parse_sweep
from rolescope.tune.trial import roles_with_memory_window, service_env


def trial(passed: bool, goodput: float, cpu: float, memory: float, **settings: int) -> TrialResult:
    return TrialResult(settings, passed, [] if passed else ["goodput"], goodput, cpu, memory)


def test_sweep_arguments_become_a_grid() -> None:
    grid = parse_sweep(["workers=1,2", "memory-window=5, 20,5"])
    assert grid == {"workers": [1, 2], "memory_window": [5, 20]}
    assert expand_grid(grid) == [
        {"workers": 1, "memory_window": 5},
        {"workers": 1, "memory_window": 20},
        {"workers": 2, "memory_window": 5},
        {"workers": 2, "memory_window": 20},
    ]


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("workers", "expected KEY=V1,V2"),
        ("colour=red,blue", "'colour' cannot be swept"),
        ("workers=one,two", "whole number"),
    ],
)
def test_bad_sweep_arguments_say_what_is_wrong(argument: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_sweep([argument])


def test_best_trial_meets_every_slo_at_the_least_cost() -> None:
    cheap_but_failing = trial(False, 30.0, 0.5, 1e5, workers=1)
    efficient = trial(True, 20.0, 0.5, 3e5, workers=2)  # 40 good req/s per core
    lean = trial(True, 19.5, 0.5, 1e5, workers=3)  # 39: a tie within 5 %, and less memory
    wasteful = trial(True, 20.0, 1.0, 5e4, workers=4)  # 20 per core
    assert best_trial([cheap_but_failing, efficient, lean, wasteful]) is lean
    assert best_trial([cheap_but_failing]) is None


def test_service_env_and_memory_window(tmp_path: Path) -> None:
    env = service_env({"workers": 2, "memory_window": 5}, {"added_latency_ms": 50.0})
    assert env == {"ROLESCOPE_WORKERS": "2", "ROLESCOPE_FAULT_ADDED_LATENCY_MS": "50.0"}
    roles = roles_with_memory_window(5, tmp_path / "roles")
    files = sorted(roles.glob("*.yaml"))
    assert files and all(yaml.safe_load(f.read_text())["memory_policy"]["max_turns"] == 5 for f in files)
