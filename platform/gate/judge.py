"""Putting the checks together into one verdict, with the functions to look at first."""

from __future__ import annotations

from collections.abc import Mapping

from rolescope.gate.absolute import absolute_checks
from rolescope.gate.capacity_check import CapacityFound, capacity_check
from rolescope.gate.memory_check import memory_checks
from rolescope.gate.model import CheckResult, FunctionShift, GatePolicy, RunData, Verdict
from rolescope.gate.relative import relative_checks

TOP_SUSPECTS = 5
# A function must gain at least this much of the profile to be named (0.5 percentage points):
# smaller shifts are sampling noise at py-spy's default rate.
MIN_SHARE_GAIN = 0.005


def suspects_from_shifts(shifts: list[FunctionShift], top: int = TOP_SUSPECTS) -> list[FunctionShift]:
    """The functions whose share of the profile grew most, largest gain first."""
    grown = [s for s in shifts if s.delta >= MIN_SHARE_GAIN]
    return sorted(grown, key=lambda s: s.delta, reverse=True)[:top]


def judge(
    policy: GatePolicy,
    candidate: list[RunData],
    reference: list[RunData] | None = None,
    memory: Mapping[str, float] | None = None,
    memory_baseline: Mapping[str, float] | None = None,
    function_shifts: list[FunctionShift] | None = None,
    capacity: tuple[CapacityFound, CapacityFound] | None = None,
) -> Verdict:
    """Every check that applies; with only capacities given, the capacity check alone."""
    checks: list[CheckResult] = []
    if candidate or not capacity:
        checks += absolute_checks(policy.objectives, candidate)
    if capacity:
        checks.append(capacity_check(capacity[0], capacity[1], policy.capacity_drop_pct))
    notes: list[str] = []
    if reference:
        relative, relative_notes = relative_checks(policy.relative, candidate, reference, policy.alpha)
        checks += relative
        notes += relative_notes
    if memory and memory_baseline:
        checks += memory_checks(memory, memory_baseline, policy.allocations_tolerance, policy.bytes_tolerance)
    elif memory_baseline and not memory:
        notes.append("no memory figures for the candidate: memory not compared with the baseline")
    return Verdict(
        checks=checks,
        suspects=suspects_from_shifts(function_shifts or []),
        candidate_runs=[run.path for run in candidate],
        reference_runs=[run.path for run in reference or []],
        policy_source=policy.source,
        notes=notes,
    )


def headline(verdict: Verdict) -> str:
    """One sentence: the verdict first, then what failed and by how much."""
    total = len(verdict.checks)
    if verdict.passed:
        return f"PASS — all {total} checks met"
    failed = verdict.failed
    names = ", ".join(check.name for check in failed[:4]) + (" …" if len(failed) > 4 else "")
    return f"FAIL — {len(failed)} of {total} checks failed: {names}"
