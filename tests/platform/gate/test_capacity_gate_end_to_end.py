"""A planted CPU fault caught by the gate's capacity check, from two real `rolescope capacity` searches.

The reference is the service as it is, searched up to a ceiling (`--max-rate`)
it holds; the candidate burns 3 ms of CPU per output token in the event loop,
which caps one process at a few requests a second. Coarse precision, short
steps and time budgets keep both searches near a minute each on a shared
machine; the gate must then fail on the capacity drop, and pass the reference
against itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

SHORT_SEARCH = (
    *("--user", "chat", "--precision", "0.5", "--min-requests", "60", "--max-step", "8"),
    *("--set", "concurrency_limit=0", "--max-rate", "40"),
)


def _rolescope(*args: str | Path, timeout: float = 200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rolescope", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def test_the_gate_fails_on_the_capacity_a_cpu_fault_costs(tmp_path: Path, fast_roles_path: Path) -> None:
    reference, candidate = tmp_path / "reference", tmp_path / "candidate"
    searched = _rolescope(
        "capacity", "--roles", fast_roles_path, *SHORT_SEARCH, "--time-budget", "60s",
        "--start-rate", "20", "--out", reference,
    )  # fmt: skip
    assert searched.returncode == 0, searched.stderr
    faulty = _rolescope(
        "capacity", "--roles", fast_roles_path, *SHORT_SEARCH, "--time-budget", "100s",
        "--fault", "cpu_per_token_us=3000", "--start-rate", "3", "--out", candidate,
    )  # fmt: skip
    assert (candidate / "capacity.json").is_file(), faulty.stderr
    found = json.loads((candidate / "capacity.json").read_text())["capacity"]
    assert found["bracket"]["high"] is not None, found

    out = tmp_path / "gate"
    gate = _rolescope("gate", "--capacity", candidate, "--capacity-reference", reference, "--out", out)
    assert gate.returncode == 1, gate.stdout + gate.stderr
    [check] = json.loads((out / "verdict.json").read_text())["checks"]
    assert check["name"] == "capacity" and check["passed"] is False
    assert check["figure"] == found["bracket"]["high"] and check["limit"] == pytest.approx(40 * 0.9)

    same = _rolescope("gate", "--capacity", reference, "--capacity-reference", reference, "-o", out / "same")
    assert same.returncode == 0, same.stdout + same.stderr
