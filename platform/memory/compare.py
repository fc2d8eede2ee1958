"""Judging a candidate's allocations and bytes per request against a baseline, kind by kind.

The rule is Go's shadow-sandbox rule for -benchmem: allocations per request may
grow by at most 5 % and bytes per request by at most 4 % (or what the SLO
spec's `gate.memory` says). Peak and retained memory are reported beside the
verdict, not judged: they depend on the traffic's concurrency, not only on code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rolescope.errors import ConfigError
from rolescope.memory.environment import check_comparable, role_version_changes
from rolescope.memory.model import AllocationSite, Baseline

FIGURES = ("allocations_per_request", "bytes_per_request")


@dataclass(frozen=True)
class Tolerances:
    """Largest allowed relative growth (0.05 = +5 %)."""

    allocations_per_request: float = 0.05
    bytes_per_request: float = 0.04


def tolerances_from_spec(path: Path | None = None) -> Tolerances:
    """The memory tolerances of the SLO spec's policy (`gate.memory`; the bundled spec without a path)."""
    from rolescope.gate.policy import load_policy

    policy = load_policy(path)
    return Tolerances(policy.allocations_tolerance, policy.bytes_tolerance)


@dataclass(frozen=True)
class FigureCheck:
    kind: str
    figure: str
    baseline: float
    candidate: float
    change: float  # relative: +0.10 is 10 % more than the baseline
    tolerance: float
    passed: bool


@dataclass(frozen=True)
class SiteGrowth:
    site: str
    baseline_allocations_per_request: float
    candidate_allocations_per_request: float
    baseline_bytes_per_request: float
    candidate_bytes_per_request: float

    @property
    def allocations_delta(self) -> float:
        return self.candidate_allocations_per_request - self.baseline_allocations_per_request


@dataclass(frozen=True)
class MemoryComparison:
    passed: bool
    tolerances: Tolerances
    checks: list[FigureCheck]
    grown_sites: list[SiteGrowth]
    context: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[FigureCheck]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failures"] = [asdict(c) for c in self.failures]
        return data


def _relative(baseline: float, candidate: float) -> float:
    if baseline == 0:
        return 0.0 if candidate == 0 else float("inf")
    return (candidate - baseline) / baseline


def grown_sites(
    before: list[AllocationSite], after: list[AllocationSite], limit: int = 10
) -> list[SiteGrowth]:
    """Sites whose allocations per request grew, largest growth first.

    Only the top sites are stored in a baseline, so a site missing from one side
    counts as zero there: a new hot site shows up with its whole count.
    """
    was = {s.key: s for s in before}
    now = {s.key: s for s in after}
    rows = []
    for key in set(was) | set(now):
        b, c = was.get(key), now.get(key)
        row = SiteGrowth(
            site=key,
            baseline_allocations_per_request=b.allocations_per_request if b else 0.0,
            candidate_allocations_per_request=c.allocations_per_request if c else 0.0,
            baseline_bytes_per_request=b.bytes_per_request if b else 0.0,
            candidate_bytes_per_request=c.bytes_per_request if c else 0.0,
        )
        grew_bytes = row.candidate_bytes_per_request > row.baseline_bytes_per_request
        if row.allocations_delta > 0 or grew_bytes:
            rows.append(row)
    rows.sort(key=lambda r: (-r.allocations_delta, r.site))
    return rows[:limit]


def compare_memory(
    baseline: Baseline, candidate: Baseline, tolerances: Tolerances | None = None
) -> MemoryComparison:
    """Check every kind both sides measured; raise EnvironmentMismatch when they are not comparable."""
    tolerances = tolerances or Tolerances()
    if baseline.mode != candidate.mode:
        raise ConfigError(
            f"the baseline was measured {baseline.mode} and the candidate {candidate.mode}: "
            "compare figures taken the same way (in-process replay, or the live service under load)"
        )
    check_comparable(baseline.environment, candidate.environment)
    kinds = [k for k in baseline.kinds if k in candidate.kinds]
    if not kinds:
        raise ConfigError(
            f"the baseline measured {sorted(baseline.kinds)} and the candidate {sorted(candidate.kinds)}: "
            "no kind of request in common"
        )
    checks: list[FigureCheck] = []
    context: dict[str, dict[str, float]] = {}
    for kind in kinds:
        b, c = baseline.kinds[kind], candidate.kinds[kind]
        for figure in FIGURES:
            was, now = float(getattr(b, figure)), float(getattr(c, figure))
            change = _relative(was, now)
            limit = float(getattr(tolerances, figure))
            checks.append(FigureCheck(kind, figure, was, now, change, limit, change <= limit))
        context[kind] = {
            "peak_bytes_change": _relative(b.peak_bytes, c.peak_bytes),
            "retained_bytes_per_session_change": _relative(
                b.retained_bytes_per_session, c.retained_bytes_per_session
            ),
            "baseline_allocations_spread_pct": b.allocations_spread_pct,
            "candidate_allocations_spread_pct": c.allocations_spread_pct,
        }
    focus = "all" if "all" in kinds else kinds[0]
    sites = grown_sites(baseline.kinds[focus].top_sites, candidate.kinds[focus].top_sites)
    return MemoryComparison(
        passed=all(c.passed for c in checks),
        tolerances=tolerances,
        checks=checks,
        grown_sites=sites,
        context=context,
        notes=role_version_changes(baseline.environment, candidate.environment),
    )
