"""The typed policy: the SLO spec parsed once, and what the gate, load, overload and memory take from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rolescope.alerts.spec import RelativeTolerance as SpecRelativeTolerance
from rolescope.alerts.spec import load_slo_spec, parse_slo_spec
from rolescope.errors import ConfigError
from rolescope.gate.model import Objective, RelativeTolerance
from rolescope.gate.policy import load_policy, policy_from_spec
from rolescope.gate.runstats import RUN_STATISTICS
from rolescope.memory.compare import Tolerances, tolerances_from_spec
from rolescope.reliability.overload import latency_objectives

BUNDLED = Path(__file__).resolve().parents[3] / "alerts" / "slo.yaml"


def _bundled() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(BUNDLED.read_text())
    return data


def test_the_bundled_spec_becomes_one_objective_per_slo_plus_goodput() -> None:
    policy = policy_from_spec(load_slo_spec())
    assert policy.objectives == (
        Objective("chat-availability", "error_ratio", 0.999),
        Objective("streaming-time-to-first-token", "latency", 0.99, "ttft", 0.5),
        Objective("end-to-end-latency", "latency", 0.99, "e2e", 5.0),
        Objective("inference-timeouts", "error_ratio", 0.999, statuses=(504,)),
        Objective("goodput", "goodput", 0.95),
    )
    latency = [o.name for o in policy.latency_objectives]
    assert latency == ["streaming-time-to-first-token", "end-to-end-latency"]
    assert (policy.alpha, policy.allocations_tolerance, policy.bytes_tolerance) == (0.05, 0.05, 0.04)


def test_gate_settings_of_the_spec_reach_the_policy() -> None:
    data = _bundled()
    data["gate"] = {
        "alpha": 0.01,
        "relative_tolerance": {"ttft_p95": 0.2},
        "memory": {"allocations_per_request": 0.02, "bytes_per_request": 0.01},
        "goodput": {"objective": 0.9},
    }
    policy = policy_from_spec(parse_slo_spec(data), source="custom.yaml")
    assert policy.alpha == 0.01 and policy.source == "custom.yaml"
    assert RelativeTolerance("ttft_p95", 0.2) in policy.relative
    # Figures the spec does not name keep their built-in tolerance.
    assert RelativeTolerance("error_ratio", 0.005, absolute=True) in policy.relative
    assert policy.objectives[-1] == Objective("goodput", "goodput", 0.9)
    assert (policy.allocations_tolerance, policy.bytes_tolerance) == (0.02, 0.01)


def test_every_relative_tolerance_the_spec_accepts_is_a_figure_the_gate_computes() -> None:
    assert set(SpecRelativeTolerance.model_fields) <= set(RUN_STATISTICS)


def test_overload_and_memory_comparison_take_their_figures_from_the_policy(tmp_path: Path) -> None:
    assert latency_objectives() == load_policy().latency_objectives
    data = _bundled()
    data["gate"] = {"memory": {"allocations_per_request": 0.03, "bytes_per_request": 0.02}}
    path = tmp_path / "slo.yaml"
    path.write_text(yaml.safe_dump(data))
    assert tolerances_from_spec(path) == Tolerances(0.03, 0.02)
    assert load_policy(path).source == str(path)


def test_a_bad_spec_is_refused_with_the_field_named(tmp_path: Path) -> None:
    data = _bundled()
    data["gate"] = {"goodput": {"objective": 1.5}}
    path = tmp_path / "slo.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"slo\.yaml: gate\.goodput\.objective = 1\.5"):
        load_policy(path)
