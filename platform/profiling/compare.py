"""Which functions' share of samples grew or shrank between baseline and candidate profiles.

Each run (or each segment of a run) is one observation of a function's share.
Per function, a two-sided Mann-Whitney U test compares the baseline shares with
the candidate shares, and Benjamini-Hochberg keeps the false discovery rate at
`alpha` over all the functions tested. Functions below `min_share` on both sides
are not tested at all, so sampling noise in rarely seen frames cannot rank.

The same test runs on each layer's share (`layers.py`) first, so a diff names
the layer that grew — framework/server, business, storage, … — before the
function, and within that layer the function whose share grew most.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from statistics import fmean
from typing import Any, Literal

from rolescope.profiling.collapsed import Profile, function_samples
from rolescope.profiling.layers import LAYERS, layer_shares

Metric = Literal["self", "total"]


@dataclass(frozen=True)
class FunctionChange:
    function: str
    baseline_self_share: float
    candidate_self_share: float
    baseline_total_share: float
    candidate_total_share: float
    delta: float  # candidate minus baseline mean share of the ranking metric, in share points (0..1)
    p_value: float | None
    q_value: float | None
    significant: bool
    direction: Literal["grew", "shrank", "same"]


@dataclass(frozen=True)
class LayerChange:
    """One layer's share of all samples on each side, and the function within it that moved most."""

    layer: str
    baseline_share: float
    candidate_share: float
    delta: float  # candidate minus baseline mean share, in share points (0..1)
    p_value: float | None
    q_value: float | None
    significant: bool
    direction: Literal["grew", "shrank", "same"]
    function: str  # the frame within the layer whose share changed most in the layer's direction
    function_delta: float


@dataclass(frozen=True)
class ProfileDiff:
    """Plain-data result of `compare_profiles`, ready for `json.dumps(diff.to_dict())`."""

    metric: Metric
    alpha: float
    min_share: float
    baseline_runs: int
    candidate_runs: int
    tested: int
    changes: list[FunctionChange] = field(default_factory=list)
    note: str = ""
    layers: list[LayerChange] = field(default_factory=list)

    @property
    def grew(self) -> list[FunctionChange]:
        return [c for c in self.changes if c.significant and c.direction == "grew"]

    @property
    def shrank(self) -> list[FunctionChange]:
        return [c for c in self.changes if c.significant and c.direction == "shrank"]

    @property
    def grown_layers(self) -> list[LayerChange]:
        return [c for c in self.layers if c.significant and c.direction == "grew"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _shares(profile: Profile) -> tuple[dict[str, float], dict[str, float]]:
    total = profile.total
    self_counts, total_counts = function_samples(profile)
    if not total:
        return {}, {}
    return (
        {k: v / total for k, v in self_counts.items()},
        {k: v / total for k, v in total_counts.items()},
    )


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Adjusted q-values (step-up), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = min(running, 1.0)
    return adjusted


def _mann_whitney(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import mannwhitneyu

    if len(set(a) | set(b)) == 1:
        return 1.0  # all observations equal: no evidence of any change
    p = float(mannwhitneyu(a, b, alternative="two-sided", method="auto").pvalue)
    return 1.0 if math.isnan(p) else p


def _direction(delta: float) -> Literal["grew", "shrank", "same"]:
    return "grew" if delta > 0 else "shrank" if delta < 0 else "same"


def compare_layers(
    baseline_runs: Sequence[Profile], candidate_runs: Sequence[Profile], *, alpha: float = 0.05
) -> list[LayerChange]:
    """Each layer's share, baseline vs candidate: significant changes first, largest first.

    With fewer than two non-empty runs a side nothing is tested and the layers
    are ranked by the size of the change alone.
    """
    base = [layer_shares(p) for p in baseline_runs if p.total]
    cand = [layer_shares(p) for p in candidate_runs if p.total]
    if not base or not cand:
        return []
    present = sorted({layer for side in (base, cand) for run in side for layer in run[0]}, key=LAYERS.index)
    testable = len(base) >= 2 and len(cand) >= 2
    columns = {
        layer: ([run[0].get(layer, 0.0) for run in base], [run[0].get(layer, 0.0) for run in cand])
        for layer in present
    }
    p_values = [_mann_whitney(*columns[layer]) for layer in present] if testable else []
    q_values = benjamini_hochberg(p_values) if testable else []
    frames = {key for side in (base, cand) for run in side for key in run[1]}
    changes = []
    for i, layer in enumerate(present):
        delta = fmean(columns[layer][1]) - fmean(columns[layer][0])
        moved = {
            frame: fmean([run[1].get((lay, frame), 0.0) for run in cand])
            - fmean([run[1].get((lay, frame), 0.0) for run in base])
            for lay, frame in frames
            if lay == layer
        }
        # The function that carried the layer's change: the one that moved most the same way.
        sign = -1.0 if delta < 0 else 1.0
        function = max(sorted(moved), key=lambda f: sign * moved[f]) if moved else ""
        if function and sign * moved[function] <= 0:
            function = ""  # nothing within the layer moved its way
        changes.append(
            LayerChange(
                layer=layer,
                baseline_share=fmean(columns[layer][0]),
                candidate_share=fmean(columns[layer][1]),
                delta=delta,
                p_value=p_values[i] if testable else None,
                q_value=q_values[i] if testable else None,
                significant=testable and q_values[i] <= alpha and delta != 0.0,
                direction=_direction(delta),
                function=function,
                function_delta=moved.get(function, 0.0),
            )
        )
    changes.sort(key=lambda ch: (not ch.significant, -abs(ch.delta), ch.layer))
    return changes


def compare_profiles(
    baseline_runs: Sequence[Profile],
    candidate_runs: Sequence[Profile],
    *,
    metric: Metric = "self",
    min_share: float = 0.01,
    alpha: float = 0.05,
) -> ProfileDiff:
    """Rank functions by how much their share changed; significant changes first, largest first.

    `metric="self"` ranks where the time is spent (a planted hot function, not
    its callers, comes first); `"total"` ranks whole subtrees.
    """
    base = [_shares(p) for p in baseline_runs if p.total]
    cand = [_shares(p) for p in candidate_runs if p.total]
    if not base or not cand:
        raise ValueError("compare_profiles needs at least one non-empty profile on each side")
    pick = 0 if metric == "self" else 1
    functions = sorted({f for s in base + cand for f in s[1]})

    def series(runs: list[tuple[dict[str, float], dict[str, float]]], fn: str, which: int) -> list[float]:
        return [run[which].get(fn, 0.0) for run in runs]

    rows: list[dict[str, Any]] = []
    for fn in functions:
        b, c = series(base, fn, pick), series(cand, fn, pick)
        if max(fmean(b), fmean(c)) < min_share:
            continue
        rows.append({"function": fn, "b": b, "c": c})

    testable = len(base) >= 2 and len(cand) >= 2
    p_values = [_mann_whitney(r["b"], r["c"]) for r in rows] if testable else []
    q_values = benjamini_hochberg(p_values) if testable else []
    changes: list[FunctionChange] = []
    for i, row in enumerate(rows):
        fn = row["function"]
        delta = fmean(row["c"]) - fmean(row["b"])
        significant = testable and q_values[i] <= alpha and delta != 0.0
        changes.append(
            FunctionChange(
                function=fn,
                baseline_self_share=fmean(series(base, fn, 0)),
                candidate_self_share=fmean(series(cand, fn, 0)),
                baseline_total_share=fmean(series(base, fn, 1)),
                candidate_total_share=fmean(series(cand, fn, 1)),
                delta=delta,
                p_value=p_values[i] if testable else None,
                q_value=q_values[i] if testable else None,
                significant=significant,
                direction=_direction(delta),
            )
        )
    changes.sort(key=lambda ch: (not ch.significant, -abs(ch.delta), ch.function))
    note = "" if testable else "fewer than two runs on a side: changes are ranked by size, none is tested"
    return ProfileDiff(
        metric=metric,
        alpha=alpha,
        min_share=min_share,
        baseline_runs=len(base),
        candidate_runs=len(cand),
        tested=len(rows) if testable else 0,
        changes=changes,
        note=note,
        layers=compare_layers(baseline_runs, candidate_runs, alpha=alpha),
    )
