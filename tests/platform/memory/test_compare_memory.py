"""Memory comparison rules, refusals and the baseline file format (pure, on made-up figures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rolescope.errors import ConfigError
from rolescope.memory.compare import Tolerances, compare_memory, tolerances_from_spec
from rolescope.memory.environment import EnvironmentMismatch, capture_environment
from rolescope.memory.model import AllocationSite, Baseline, KindFigures, RepeatFigures, load_baseline


def _figures(allocs: float, size: float, sites: dict[str, float] | None = None) -> KindFigures:
    repeat = RepeatFigures(requests=100, sessions=10, allocations=int(allocs * 100), bytes=int(size * 100),
                           peak_bytes=1_000_000, retained_bytes=5_000)
    return KindFigures(
        requests=100, sessions=10, allocations_per_request=allocs, bytes_per_request=size,
        peak_bytes=1_000_000, retained_bytes_per_session=500.0, allocations_spread_pct=0.1,
        bytes_spread_pct=0.1, repeats=[repeat],
        top_sites=[
            AllocationSite(function=name, file="app.py", line=1, allocations_per_request=n,
                           bytes_per_request=n * 50)
            for name, n in (sites or {}).items()
        ],
    )


def _baseline(allocs: float = 10_000, size: float = 1_000_000, *, python: str | None = None,
              sites: dict[str, float] | None = None, mode: str = "in-process") -> Baseline:
    env = capture_environment(role_versions={"sherlock": "1.0"}, traffic="t.jsonl", digest="sha256:abc")
    if python is not None:
        env = env.model_copy(update={"python": python})
    return Baseline(
        mode=mode,  # type: ignore[arg-type]
        recorded_at="2026-01-01T00:00:00Z", repeats=1, warmup=0, environment=env,
        kinds={"chat": _figures(allocs, size, sites), "all": _figures(allocs, size, sites)},
    )


def test_ten_percent_more_allocations_fails_and_names_the_site_that_grew() -> None:
    before = _baseline(sites={"handle": 5000, "render": 2000})
    after = _baseline(allocs=11_000, sites={"handle": 5000, "render": 2000, "ballast": 1000})
    result = compare_memory(before, after)
    assert not result.passed
    failed = {(c.kind, c.figure) for c in result.failures}
    assert ("all", "allocations_per_request") in failed
    assert result.grown_sites[0].site == "ballast (app.py:1)"
    assert result.grown_sites[0].allocations_delta == pytest.approx(1000)


def test_growth_within_tolerance_passes() -> None:
    result = compare_memory(_baseline(), _baseline(allocs=10_400, size=1_030_000))
    assert result.passed and not result.failures


def test_bytes_have_their_own_tighter_tolerance() -> None:
    result = compare_memory(_baseline(), _baseline(allocs=10_000, size=1_045_000))
    assert [c.figure for c in result.failures] == ["bytes_per_request", "bytes_per_request"]


def test_tolerances_are_taken_from_the_argument() -> None:
    result = compare_memory(_baseline(), _baseline(allocs=11_000), Tolerances(allocations_per_request=0.2))
    assert result.passed


def test_tolerances_come_from_the_slo_spec_gate_section(tmp_path: Path) -> None:
    assert tolerances_from_spec() == Tolerances(0.05, 0.04)
    import yaml

    from rolescope.alerts.spec import load_slo_spec

    bundled = load_slo_spec().model_dump(mode="json", exclude_none=True)
    bundled["gate"]["memory"] = {"allocations_per_request": 0.02, "bytes_per_request": 0.01}
    path = tmp_path / "slo.yaml"
    path.write_text(yaml.safe_dump(bundled))
    assert tolerances_from_spec(path) == Tolerances(0.02, 0.01)


def test_a_baseline_from_another_python_is_refused_with_both_versions_named() -> None:
    with pytest.raises(EnvironmentMismatch, match=r"Python CPython 3\.10\.0 in the baseline"):
        compare_memory(_baseline(python="3.10.0"), _baseline())


def test_a_baseline_with_other_package_versions_is_refused() -> None:
    before = _baseline()
    packages = {**before.environment.packages, "starlette": "0.0.1"}
    env = before.environment.model_copy(update={"packages": packages})
    before = before.model_copy(update={"environment": env})
    with pytest.raises(EnvironmentMismatch, match=r"starlette 0\.0\.1 in the baseline"):
        compare_memory(before, _baseline())


def test_live_figures_are_not_compared_with_in_process_ones() -> None:
    with pytest.raises(ConfigError, match="measured in-process and the candidate live"):
        compare_memory(_baseline(), _baseline(mode="live"))


def test_role_version_changes_are_compared_but_reported() -> None:
    after = _baseline()
    env = after.environment.model_copy(update={"role_versions": {"sherlock": "1.1"}})
    result = compare_memory(_baseline(), after.model_copy(update={"environment": env}))
    assert result.passed and result.notes == ["role sherlock: 1.0 → 1.1"]


def test_baseline_round_trips_and_bad_files_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    _baseline().dump(path)
    assert load_baseline(path) == _baseline()
    data = json.loads(path.read_text())
    data["kinds"]["chat"]["allocations_per_request"] = "many"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"b\.json: field `kinds\.chat\.allocations_per_request`"):
        load_baseline(path)
    with pytest.raises(ConfigError, match="no such baseline file"):
        load_baseline(tmp_path / "missing.json")


def test_comparison_serialises_to_json() -> None:
    result = compare_memory(_baseline(sites={"a": 1}), _baseline(allocs=12_000, sites={"a": 3}))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["passed"] is False and data["failures"] and data["grown_sites"][0]["site"] == "a (app.py:1)"
