"""Memory against the committed baseline: allocations and bytes per request.

Allocation counts (memray, every allocation) are deterministic to well under
1 %, so they are judged against a committed baseline with plain tolerances —
the `-benchmem` practice (allocs/op within 5 %, bytes/op within 4 %) — rather
than with statistics across runs.
"""

from __future__ import annotations

from collections.abc import Mapping

from rolescope.gate.model import CheckResult

ALLOCATIONS = "allocations_per_request"
BYTES = "bytes_per_request"


def _tolerance_for(figure: str, allocations: float, bytes_: float) -> float | None:
    if figure.endswith(ALLOCATIONS):
        return allocations
    if figure.endswith(BYTES):
        return bytes_
    return None


def memory_checks(
    candidate: Mapping[str, float],
    baseline: Mapping[str, float],
    allocations_tolerance: float,
    bytes_tolerance: float,
) -> list[CheckResult]:
    """One check per figure present on both sides (e.g. `chat.allocations_per_request`)."""
    results = []
    for figure in sorted(set(candidate) & set(baseline)):
        tolerance = _tolerance_for(figure, allocations_tolerance, bytes_tolerance)
        base = float(baseline[figure])
        if tolerance is None or base <= 0:
            continue
        value = float(candidate[figure])
        change = value / base - 1.0
        passed = change <= tolerance
        label = figure.replace("_", " ")
        results.append(
            CheckResult(
                name=f"memory:{figure}",
                kind="memory",
                description=f"{label} within +{100 * tolerance:g} % of the baseline",
                figure=change,
                limit=tolerance,
                direction="max",
                passed=passed,
                unit="relative",
                statistics={"candidate": value, "baseline": base},
                message=f"{label}: {value:,.1f} vs baseline {base:,.1f} ({100 * change:+.2f} %, "
                f"at most +{100 * tolerance:g} %)",
            )
        )
    return results
