"""`rolescope tune --sweep` end to end: a real service per trial, a ranking, and `sweep.json`.

Two settings of the concurrency limit, one load run of a few seconds each: a
limit of 1 refuses most of the concurrent sessions (503), so that trial must
break availability, while a roomy limit serves them; the sweep must rank them
and choose only a trial that met every SLO.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rolescope.rundir import SWEEP_FILE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def test_a_sweep_of_two_settings_runs_both_ranks_them_and_writes_sweep_json(
    tmp_path: Path, fast_roles_path: Path
) -> None:
    out = tmp_path / "sweep"
    command = [
        *(sys.executable, "-m", "rolescope", "tune", "--quick", "--runs", "1", "--duration", "6"),
        *("--users", "10", "--no-profile", "--no-memory", "--roles", str(fast_roles_path)),
        *("--sweep", "concurrency_limit=1,64", "--out", str(out)),
    ]
    # Wide enough that the table's settings column is not cut short.
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=360, env=env)
    output = result.stdout + result.stderr
    assert result.returncode in (0, 1), output

    document = json.loads((out / SWEEP_FILE).read_text())
    trials = document["trials"]
    assert [t["settings"] for t in trials] == [{"concurrency_limit": 1}, {"concurrency_limit": 64}]
    for index, trial in enumerate(trials, start=1):
        assert Path(trial["directory"]) == out / f"trial-{index}"
        assert (out / f"trial-{index}" / "verdict.json").is_file()
        assert trial["goodput_per_cpu"] >= 0 and trial["cpu_cores"] > 0
    refused, roomy = trials
    assert not refused["passed"] and "chat-availability" in refused["failed_checks"]
    assert roomy["goodput_rps"] > 2 * refused["goodput_rps"]
    assert "goodput per CPU" in document["ranking"]

    # The ranking on the terminal: both settings, each with its SLO outcome, and the choice.
    assert "sweep — 2 trials" in result.stdout
    assert "concurrency_limit=1 " in result.stdout and "concurrency_limit=64" in result.stdout
    if roomy["passed"]:
        assert document["best"] == {"concurrency_limit": 64}
        assert result.returncode == 0
        assert "best: concurrency_limit=64" in result.stdout
    else:
        # Only a trial that met every SLO is ever chosen, and then the sweep fails.
        assert document["best"] is None
        assert result.returncode == 1 and "no trial met every SLO" in output
