"""What a run directory measured and what it could not, with the reason.

A target that is not rolescope's own service (or one run without its process
id) gives client-side figures only: no CPU profile, no allocation figures, no
CPU or memory of the service process. The checks that need those are left
out, never failed, and the report must say so plainly. `rolescope tune`
writes its reasons into `measurements.json`; for directories without one
(plain `rolescope load` runs) the reasons are read off the files present.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rolescope.gate.model import KINDS, MEMORY, PROFILE, SERVER, Measurement, RunData
from rolescope.rundir import FUNCTIONS_FILE, MEASUREMENTS_FILE, MEMORY_ERROR_FILE, MEMORY_FILE, PROFILE_DIR


def measurement_to_dict(measurement: Measurement) -> dict[str, Any]:
    return {**asdict(measurement), "what": measurement.what}


def write_measurements(directory: Path, measurements: list[Measurement]) -> Path:
    path = directory / MEASUREMENTS_FILE
    path.write_text(json.dumps([measurement_to_dict(m) for m in measurements], indent=2) + "\n")
    return path


def _recorded(paths: list[Path]) -> dict[str, Measurement]:
    """The reasons `rolescope tune` wrote beside its runs (a tune directory or a load run's parent)."""
    recorded: dict[str, Measurement] = {}
    for path in paths:
        for file in (path / MEASUREMENTS_FILE, path.parent / MEASUREMENTS_FILE):
            if not file.is_file():
                continue
            try:
                rows = json.loads(file.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            for row in rows if isinstance(rows, list) else []:
                if isinstance(row, dict) and row.get("kind") in KINDS:
                    measured, detail = bool(row.get("measured")), str(row.get("detail"))
                    recorded.setdefault(row["kind"], Measurement(row["kind"], measured, detail))
    return recorded


def _any_file(paths: list[Path], *names: str) -> Path | None:
    for path in paths:
        for name in names:
            for candidate in (path / name, path.parent / name):
                if candidate.exists():
                    return candidate
    return None


def _profile(paths: list[Path], runs: list[RunData]) -> Measurement:
    profile_dir = _any_file(paths, PROFILE_DIR)
    if profile_dir is not None and any(profile_dir.glob(f"**/{FUNCTIONS_FILE}")):
        return Measurement(PROFILE, True, f"py-spy profiles in {profile_dir}")
    errors = [str(run.service["profile_error"]) for run in runs if run.service.get("profile_error")]
    if errors:
        return Measurement(PROFILE, False, f"py-spy failed: {errors[0]}")
    if not any(run.service.get("pid") for run in runs):
        return Measurement(PROFILE, False, "the service's process was not known (a target without --pid)")
    return Measurement(PROFILE, False, "no profile was recorded with these runs (--no-profile)")


def _memory(paths: list[Path], measured: bool) -> Measurement:
    memory_file = _any_file(paths, MEMORY_FILE)
    if memory_file is not None:
        detail = f"{memory_file}" + ("" if measured else " (not comparable with the baseline: see the notes)")
        return Measurement(MEMORY, True, detail)
    error_file = _any_file(paths, MEMORY_ERROR_FILE)
    if error_file is not None:
        return Measurement(MEMORY, False, f"memray failed: {error_file.read_text().strip()}")
    return Measurement(MEMORY, False, f"no {MEMORY_FILE} with these runs")


def _server(runs: list[RunData]) -> Measurement:
    with_cpu = [run for run in runs if run.service.get("cpu_seconds") is not None]
    if runs and len(with_cpu) == len(runs):
        pids = sorted({str(run.service.get("pid")) for run in with_cpu})
        return Measurement(SERVER, True, f"read from process {', '.join(pids)} during every run")
    if with_cpu:
        return Measurement(SERVER, True, f"read during {len(with_cpu)} of {len(runs)} runs only")
    return Measurement(
        SERVER,
        False,
        "the service's process was not known (a target given without --pid): "
        "no CPU per output token, no peak RSS",
    )


def measurements(paths: list[Path], runs: list[RunData], memory_judged: bool) -> list[Measurement]:
    """Profile, memory and server-side metrics of the candidate: tune's recorded reasons win."""
    recorded = _recorded(paths)
    inferred = {PROFILE: _profile(paths, runs), MEMORY: _memory(paths, memory_judged), SERVER: _server(runs)}
    result = []
    for kind in KINDS:
        found = inferred[kind]
        # What the files show wins over what was planned; the plan gives the reason for an absence.
        if not found.measured and kind in recorded and not recorded[kind].measured:
            found = recorded[kind]
        result.append(found)
    return result


def not_measured(items: list[Measurement]) -> list[Measurement]:
    return [m for m in items if not m.measured]
