"""Relative A/B checks: candidate runs against reference runs on the same machine.

A check fails only when the change is both statistically significant and larger
than its tolerance. Significance: one-sided Mann–Whitney U across runs (no
normality assumed; benchstat's practice), Holm-corrected across every relative
check so that adding checks does not add false alarms. Tolerance: the
Keptn-style "may worsen by at most +10 %". Either alone is not enough: a tiny
but consistent change is real and harmless; a large change in a noisy figure
may be luck.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from rolescope.gate.model import CheckResult, RelativeTolerance, RunData
from rolescope.gate.runstats import HIGHER_IS_BETTER, RUN_STATISTICS, run_statistic

# With n runs a side the smallest one-sided exact p-value is 1 / C(2n, n): 3 a side
# cannot go below 0.05 at all, 5 a side reaches 0.004.
MIN_RUNS_FOR_SIGNIFICANCE = 4


@dataclass(frozen=True)
class _Comparison:
    tolerance: RelativeTolerance
    candidate: list[float]
    reference: list[float]
    change: float
    p_value: float
    u_statistic: float


def holm_adjust(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order (step-down, monotone)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def one_sided_mannwhitney(
    candidate: list[float], reference: list[float], worse: str = "greater"
) -> tuple[float, float]:
    """(U, p) for "candidate tends to be worse (`greater` or `less`) than reference".

    When every value on both sides is the same there is no evidence of anything: p = 1.
    """
    if not candidate or not reference or len(set(candidate) | set(reference)) == 1:
        return float("nan"), 1.0
    result = stats.mannwhitneyu(candidate, reference, alternative=worse)
    p_value = float(result.pvalue)
    return float(result.statistic), 1.0 if math.isnan(p_value) else p_value


def change_of(tolerance: RelativeTolerance, candidate: list[float], reference: list[float]) -> float:
    """How much worse the candidate's median is: relative (or, for absolute tolerances, plain).

    For figures where higher is better (throughput) a drop counts as positive.
    """
    c, r = float(np.median(candidate)), float(np.median(reference))
    if tolerance.metric in HIGHER_IS_BETTER:
        c, r = -c, -r
        if tolerance.absolute:
            return c - r
        return 0.0 if r == 0 else (c - r) / abs(r)
    if tolerance.absolute:
        return c - r
    if r == 0:
        return 0.0 if c == 0 else math.inf
    return c / r - 1.0


def _compare(tolerance: RelativeTolerance, cand: list[RunData], ref: list[RunData]) -> _Comparison | None:
    candidate = run_statistic(tolerance.metric, cand)
    reference = run_statistic(tolerance.metric, ref)
    if not candidate or not reference:
        return None
    worse = "less" if tolerance.metric in HIGHER_IS_BETTER else "greater"
    u, p = one_sided_mannwhitney(candidate, reference, worse)
    return _Comparison(tolerance, candidate, reference, change_of(tolerance, candidate, reference), p, u)


def _format_change(value: float, absolute: bool, unit: str) -> str:
    if absolute:
        return f"{100 * value:+.2f} pp" if unit == "" else f"{value:+.4g} {unit}"
    return "+∞ %" if math.isinf(value) else f"{100 * value:+.1f} %"


def relative_checks(
    tolerances: tuple[RelativeTolerance, ...],
    candidate: list[RunData],
    reference: list[RunData],
    alpha: float,
) -> tuple[list[CheckResult], list[str]]:
    """The relative checks and any notes about what could not be judged."""
    notes: list[str] = []
    comparisons = []
    for tolerance in tolerances:
        comparison = _compare(tolerance, candidate, reference)
        if comparison is None:
            notes.append(f"{tolerance.metric}: not measured on both sides, not compared")
        else:
            comparisons.append(comparison)
    if comparisons and min(len(candidate), len(reference)) < MIN_RUNS_FOR_SIGNIFICANCE:
        notes.append(
            f"only {len(candidate)} candidate and {len(reference)} reference runs: with fewer than "
            f"{MIN_RUNS_FOR_SIGNIFICANCE} a side no change can reach significance, run more"
        )
    adjusted = holm_adjust([c.p_value for c in comparisons])
    results = []
    for comparison, p_adjusted in zip(comparisons, adjusted, strict=True):
        tol = comparison.tolerance
        description_text, unit, _ = RUN_STATISTICS[tol.metric]
        significant = p_adjusted < alpha
        beyond = comparison.change > tol.tolerance
        passed = not (significant and beyond)
        change_text = _format_change(comparison.change, tol.absolute, unit)
        if tol.metric in HIGHER_IS_BETTER:
            change_text = (
                f"fell by {change_text.lstrip('+')}"
                if comparison.change >= 0
                else (f"rose by {change_text.lstrip('-')}")
            )
        limit_text = _format_change(tol.tolerance, tol.absolute, unit)
        verdict_text = (
            "regressed"
            if not passed
            else "within tolerance"
            if not beyond
            else "changed beyond tolerance but not significantly"
        )
        results.append(
            CheckResult(
                name=f"ab:{tol.metric}",
                kind="relative",
                description=f"{description_text} vs reference, at most {limit_text}",
                figure=comparison.change,
                limit=tol.tolerance,
                direction="max",
                passed=passed,
                unit="absolute" if tol.absolute else "relative",
                statistics={
                    "test": "Mann-Whitney U, one-sided (candidate worse), Holm-corrected",
                    "u_statistic": comparison.u_statistic,
                    "p_value": comparison.p_value,
                    "p_adjusted": p_adjusted,
                    "alpha": alpha,
                    "significant": significant,
                    "candidate_median": float(np.median(comparison.candidate)),
                    "reference_median": float(np.median(comparison.reference)),
                    "candidate": comparison.candidate,
                    "reference": comparison.reference,
                    "figure_unit": unit,
                },
                message=f"{description_text} {change_text} (tolerance {limit_text}, "
                f"p = {p_adjusted:.3g} after Holm, α = {alpha:g}): {verdict_text}",
            )
        )
    return results, notes
