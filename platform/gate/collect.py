"""Gathering what the gate judges from directories: runs, memory figures, profiles, links.

This is the file-reading edge around the pure judgement; `rolescope gate` and
`rolescope tune` both go through it, so they judge a directory the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rolescope.errors import ConfigError
from rolescope.gate.capacity_check import CapacityFound, load_capacity
from rolescope.gate.mirroring import MirroringSection, find_section
from rolescope.gate.model import FunctionShift, RunData
from rolescope.gate.rundir import expand_run_dirs, load_run
from rolescope.profiling.layers import IDLE_FRAMES
from rolescope.rundir import (
    FUNCTIONS_FILE,
    LOAD_DIR_PREFIX,
    MEMORY_ERROR_FILE,
    MEMORY_FILE,
    PROFILE_DIR,
)

if TYPE_CHECKING:
    from rolescope.gate.model import Measurement
    from rolescope.profiling.compare import LayerChange
    from rolescope.profiling.layers import LayerShare


@dataclass
class Collected:
    candidate: list[RunData]
    reference: list[RunData] = field(default_factory=list)
    memory: dict[str, float] = field(default_factory=dict)
    memory_baseline: dict[str, float] = field(default_factory=dict)
    function_shifts: list[FunctionShift] = field(default_factory=list)
    hot_functions: list[tuple[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    layers: list[LayerShare] = field(default_factory=list)
    layer_shifts: list[LayerChange] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    # (candidate, reference) capacities from `rolescope capacity` directories, when both are given.
    capacity: tuple[CapacityFound, CapacityFound] | None = None
    mirroring: MirroringSection | None = None


def default_baseline_path() -> Path:
    return Path(str(resources.files("rolescope.loadtests").joinpath("baselines", "bundled.json")))


def _find_memory_file(paths: list[Path]) -> Path | None:
    for path in paths:
        for candidate in (path / MEMORY_FILE, path.parent / MEMORY_FILE):
            if candidate.is_file():
                return candidate
    return None


def _memory_against_baseline(candidate_file: Path, baseline_file: Path, collected: Collected) -> None:
    """Fill the memory figures of both sides, by kind, when they were measured comparably.

    Allocation counts depend on the interpreter, the packages and the traffic, so
    figures from a different environment say nothing about the code: they are
    left out with a note instead of failing the gate.
    """
    from rolescope.memory.compare import compare_memory
    from rolescope.memory.model import load_baseline

    baseline, candidate = load_baseline(baseline_file), load_baseline(candidate_file)
    try:
        comparison = compare_memory(baseline, candidate)
    except ConfigError as exc:
        collected.notes.append(f"memory not compared with {baseline_file}: {exc}")
        return
    for check in comparison.checks:
        key = f"{check.kind}.{check.figure}"
        collected.memory[key] = check.candidate
        collected.memory_baseline[key] = check.baseline
    # The sites are where to look when allocations grew; on a pass they are noise.
    for site in comparison.grown_sites[:3] if not comparison.passed else []:
        collected.notes.append(
            f"allocation site that grew: {site.site} "
            f"({site.baseline_allocations_per_request:.1f} → "
            f"{site.candidate_allocations_per_request:.1f} per request)"
        )
    collected.notes.extend(comparison.notes)


def _profile_dirs(paths: list[Path]) -> list[Path]:
    dirs: list[Path] = []
    for path in paths:
        for candidate in (path / PROFILE_DIR, path.parent / PROFILE_DIR):
            if candidate.is_dir() and candidate not in dirs:
                dirs.append(candidate)
    return dirs


def function_shifts(reference_dirs: list[Path], candidate_dirs: list[Path]) -> list[FunctionShift]:
    """Function-share changes between the reference's and the candidate's py-spy profiles."""
    from rolescope.profiling.compare import compare_profiles
    from rolescope.profiling.recorder import load_runs

    reference = [p for d in reference_dirs for p in _profiles_in(d, load_runs)]
    candidate = [p for d in candidate_dirs for p in _profiles_in(d, load_runs)]
    if not reference or not candidate:
        return []
    try:
        diff = compare_profiles(reference, candidate, metric="self")
    except ValueError:
        return []
    return [
        FunctionShift(c.function, c.baseline_self_share, c.candidate_self_share)
        for c in diff.changes
        if c.significant or not diff.tested
    ]


def _profiles_in(directory: Path, load_runs: Any) -> list[Any]:
    """A tune profile directory holds one profile per load run (`load-N/`), or is one itself."""
    subdirs = sorted(p for p in directory.iterdir() if p.is_dir() and p.name.startswith(LOAD_DIR_PREFIX))
    profiles: list[Any] = []
    for path in subdirs or [directory]:
        try:
            profiles += load_runs(path)
        except ConfigError:
            continue
    return profiles


def layer_breakdown(profile_dirs: list[Path]) -> list[LayerShare]:
    """The candidate's CPU samples by layer, over every profile of its directories merged."""
    from rolescope.profiling.collapsed import merge
    from rolescope.profiling.layers import layer_table
    from rolescope.profiling.recorder import load_runs

    profiles = [p for d in profile_dirs for p in _profiles_in(d, load_runs)]
    return layer_table(merge(profiles)) if profiles else []


def layer_shifts(reference_dirs: list[Path], candidate_dirs: list[Path]) -> list[LayerChange]:
    """How each layer's share of samples changed between the reference's and the candidate's profiles."""
    from rolescope.profiling.compare import compare_layers
    from rolescope.profiling.recorder import load_runs

    reference = [p for d in reference_dirs for p in _profiles_in(d, load_runs)]
    candidate = [p for d in candidate_dirs for p in _profiles_in(d, load_runs)]
    return compare_layers(reference, candidate)


def hot_functions(profile_dirs: list[Path], top: int = 8) -> list[tuple[str, float]]:
    """The functions with the largest self share of CPU samples, over every profile of the candidate."""
    samples: dict[str, int] = {}
    total = 0
    for directory in profile_dirs:
        for table in sorted(directory.glob(f"**/{FUNCTIONS_FILE}")):
            try:
                rows = json.loads(table.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            for row in rows:
                count = int(row.get("self_samples", 0))
                total += count
                if count and not IDLE_FRAMES.match(str(row.get("function", ""))):
                    samples[row["function"]] = samples.get(row["function"], 0) + count
    if not total:
        return []
    ranked = sorted(samples.items(), key=lambda item: item[1], reverse=True)[:top]
    return [(name, count / total) for name, count in ranked]


def collect_capacity(collected: Collected, candidate: Path, reference: Path) -> None:
    """Both capacities, or a ConfigError naming every directory that has none."""
    found: list[CapacityFound] = []
    problems: list[str] = []
    for path in (candidate, reference):
        try:
            found.append(load_capacity(path))
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    collected.capacity = (found[0], found[1])


def collect(
    candidate_paths: list[Path], reference_paths: list[Path] | None = None, baseline_path: Path | None = None
) -> Collected:
    if not candidate_paths:
        return Collected(candidate=[])
    candidate_dirs = expand_run_dirs(candidate_paths)
    reference_dirs = expand_run_dirs(reference_paths) if reference_paths else []
    collected = Collected(
        candidate=[load_run(p) for p in candidate_dirs],
        reference=[load_run(p) for p in reference_dirs],
    )
    memory_file = _find_memory_file([*candidate_paths, *candidate_dirs])
    if memory_file is None and baseline_path is None and not default_baseline_path().is_file():
        collected.notes.append(
            "no committed memory baseline: record one with "
            "`rolescope baseline record --out loadtests/baselines/bundled.json`"
        )
    for path in candidate_paths:
        if (path / MEMORY_ERROR_FILE).is_file():
            collected.notes.append(f"memory not measured: {(path / MEMORY_ERROR_FILE).read_text().strip()}")
    if memory_file is not None:
        baseline = baseline_path or default_baseline_path()
        if baseline.is_file():
            _memory_against_baseline(memory_file, baseline, collected)
        elif baseline_path is not None:
            raise ConfigError(f"{baseline_path}: baseline file not found")
        else:
            collected.notes.append(f"no committed memory baseline at {baseline}: memory not judged")
    candidate_profiles = _profile_dirs([*candidate_paths, *candidate_dirs])
    collected.hot_functions = hot_functions(candidate_profiles)
    collected.layers = layer_breakdown(candidate_profiles)
    if reference_paths:
        reference_profiles = _profile_dirs([*reference_paths, *reference_dirs])
        collected.function_shifts = function_shifts(reference_profiles, candidate_profiles)
        collected.layer_shifts = layer_shifts(reference_profiles, candidate_profiles)
    collected.mirroring = find_section(candidate_paths)
    from rolescope.gate.coverage import measurements

    collected.measurements = measurements(
        [*candidate_paths, *candidate_dirs], collected.candidate, bool(collected.memory)
    )
    return collected
