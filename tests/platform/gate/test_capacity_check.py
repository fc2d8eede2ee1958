"""The gate's capacity check: a candidate's capacity bracket against a reference's, on disk and in outputs."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from rolescope.errors import ConfigError
from rolescope.gate.capacity_check import CapacityFound, capacity_check, load_capacity
from rolescope.gate.policy import load_policy

ROOT = Path(__file__).resolve().parents[3]


def capacity_dir(path: Path, rate: float | None, low: float | None, high: float | None) -> Path:
    """A `rolescope capacity` directory holding only the part of capacity.json the gate reads."""
    path.mkdir(parents=True)
    document = {
        "schema_version": 1,
        "capacity": {
            "rate_rps": rate,
            "bracket": {"low": low, "high": high},
            "width": None if low is None or high is None else high / low - 1,
            "binding_slo": "chat-ttft",
            "edge_step": None,
            "first_failure_step": None,
        },
    }
    (path / "capacity.json").write_text(json.dumps(document))
    return path


def found(low: float | None, high: float | None) -> CapacityFound:
    return CapacityFound("test", low, low, high)


def test_a_drop_beyond_the_tolerance_fails() -> None:
    # Reference held 100 req/s; the candidate failed at 80: even its bracket top is 20 % below.
    check = capacity_check(found(76, 80), found(100, 105), drop_pct=10)
    assert not check.passed
    assert check.kind == "capacity"
    assert check.figure == 80 and check.limit == pytest.approx(90)
    assert "drop beyond the 10 % tolerance" in check.message


def test_a_drop_within_the_tolerance_passes() -> None:
    # Bracket top 92 is 8 % below the reference's bottom: within 10 %.
    assert capacity_check(found(88, 92), found(100, 105), drop_pct=10).passed
    # The same figures fail a stricter spec.
    assert not capacity_check(found(88, 92), found(100, 105), drop_pct=5).passed


def test_overlapping_brackets_pass_even_when_the_rate_found_is_lower() -> None:
    # Two searches of the same service disagree within their brackets: no drop is shown.
    check = capacity_check(found(60, 110), found(100, 105), drop_pct=1)
    assert check.passed


def test_without_bounds_nothing_shows_a_drop() -> None:
    # The candidate never failed (no upper bound), or the reference held no rate (no lower bound).
    assert capacity_check(found(50, None), found(100, 105), drop_pct=10).passed
    assert capacity_check(found(None, 3), found(None, 2), drop_pct=10).passed


def test_a_capacity_file_with_wrong_fields_names_every_one(tmp_path: Path) -> None:
    directory = capacity_dir(tmp_path / "c", rate=-1, low=-1, high=None)
    with pytest.raises(ConfigError) as excinfo:
        load_capacity(directory)
    message = str(excinfo.value)
    assert "rate_rps=-1" in message and "low=-1" in message and "capacity.json" in message
    with pytest.raises(ConfigError, match=r"no capacity\.json"):
        load_capacity(tmp_path)


def test_the_tolerance_comes_from_the_spec_and_is_validated(tmp_path: Path) -> None:
    spec = yaml.safe_load((ROOT / "alerts" / "slo.yaml").read_text())
    assert load_policy().capacity_drop_pct == 10
    spec["gate"]["capacity_drop_pct"] = 25
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump(spec))
    assert load_policy(tmp_path / "ok.yaml").capacity_drop_pct == 25
    spec["gate"]["capacity_drop_pct"] = 150
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match="capacity_drop_pct"):
        load_policy(tmp_path / "bad.yaml")


def _gate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rolescope", "gate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_gate_command_fails_on_a_capacity_drop_and_writes_every_output(tmp_path: Path) -> None:
    reference = capacity_dir(tmp_path / "reference", rate=100, low=100, high=105)
    candidate = capacity_dir(tmp_path / "candidate", rate=50, low=50, high=53)
    out = tmp_path / "gate"
    result = _gate("--capacity", candidate, "--capacity-reference", reference, "--out", out)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "capacity" in result.stdout
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["passed"] is False
    [check] = verdict["checks"]
    assert check["name"] == "capacity" and check["kind"] == "capacity" and check["passed"] is False
    suites = ET.parse(out / "junit.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["rolescope.gate.capacity"]
    assert suites[0].get("failures") == "1"
    summary = (out / "summary.md").read_text()
    assert "Capacity vs reference" in summary and "| candidate | 50 req/s | [50, 53]" in summary
    assert (out / "report.html").is_file()

    same = capacity_dir(tmp_path / "same", rate=98, low=98, high=103)
    result = _gate("--capacity", same, "--capacity-reference", reference, "--out", tmp_path / "gate2")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_gate_command_says_what_is_missing(tmp_path: Path) -> None:
    reference = capacity_dir(tmp_path / "reference", rate=100, low=100, high=105)
    result = _gate("--capacity-reference", reference)
    assert result.returncode == 2 and "--capacity and --capacity-reference go together" in result.stderr
    assert "Traceback" not in result.stderr
    result = _gate("--capacity", tmp_path / "nowhere", "--capacity-reference", tmp_path / "neither")
    assert result.returncode == 2
    assert "nowhere: no capacity.json" in result.stderr and "neither: no capacity.json" in result.stderr
    result = _gate()
    assert result.returncode == 2 and "nothing to judge" in result.stderr
