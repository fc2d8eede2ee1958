"""The committed memory baseline kept like a golden file: a fresh recording must land on it.

Allocation counts are deterministic up to a small run-to-run spread, so a fresh
`rolescope baseline record` on the same interpreter and packages differs from
the committed `loadtests/baselines/bundled.json` by at most that spread. A
larger difference, either way, means the code changed what a request allocates:
the change must re-record the baseline in the same commit and say why, so the
gate's 5 % / 4 % tolerance is spent on regressions, not on a stale baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

from rolescope.memory.compare import FIGURES
from rolescope.memory.environment import differences
from rolescope.memory.model import Baseline

# Three recordings in a row on one busy machine: their medians differed by at most 0.42 % (allocations)
# and 0.19 % (bytes per request), single repeats within one recording by up to 0.77 %
# (docs/profiling-and-memory.md). 1 % covers that spread and stays well inside the gate's 5 % / 4 %.
GOLDEN_TOLERANCE_PCT = 1.0
COMMITTED_PATH = "loadtests/baselines/bundled.json"
RERECORD_COMMAND = f"make baseline  (= rolescope baseline record --out {COMMITTED_PATH})"


@dataclass(frozen=True, slots=True)
class Drift:
    kind: str
    figure: str
    committed: float
    fresh: float

    @property
    def change_pct(self) -> float:
        return 100.0 * (self.fresh - self.committed) / self.committed if self.committed else float("inf")

    def describe(self) -> str:
        return (
            f"{self.kind} {self.figure.replace('_', ' ')}: committed {self.committed:,.1f}, "
            f"fresh {self.fresh:,.1f} ({self.change_pct:+.2f} %)"
        )


def figures_of(committed: Baseline, fresh: Baseline) -> list[Drift]:
    """Both sides' figures for every kind both measured, whatever their difference."""
    return [
        Drift(kind, figure, getattr(committed.kinds[kind], figure), getattr(fresh.kinds[kind], figure))
        for kind in committed.kinds
        if kind in fresh.kinds
        for figure in FIGURES
    ]


def drifts(committed: Baseline, fresh: Baseline, tolerance_pct: float = GOLDEN_TOLERANCE_PCT) -> list[Drift]:
    """The figures that moved by more than `tolerance_pct`, up or down."""
    return [d for d in figures_of(committed, fresh) if abs(d.change_pct) > tolerance_pct]


def stale_reasons(
    committed: Baseline, fresh: Baseline, tolerance_pct: float = GOLDEN_TOLERANCE_PCT
) -> list[str]:
    """Why the committed baseline no longer describes this code here; empty when it still does."""
    # Figures from another interpreter, other packages or other traffic are not compared at all.
    reasons = [f"not comparable: {d}" for d in differences(committed.environment, fresh.environment)]
    if committed.mode != fresh.mode:
        reasons.append(f"not comparable: measured {committed.mode} in the baseline, {fresh.mode} here")
    if reasons:
        return reasons
    for kind in sorted(set(committed.kinds) ^ set(fresh.kinds)):
        side = "the baseline" if kind in committed.kinds else "this recording"
        reasons.append(f"{kind} requests measured only in {side}")
    return reasons + [d.describe() for d in drifts(committed, fresh, tolerance_pct)]


def stale_message(reasons: list[str], tolerance_pct: float = GOLDEN_TOLERANCE_PCT) -> str:
    lines = [
        f"{COMMITTED_PATH} no longer matches a fresh recording (allowed: ±{tolerance_pct:g} %, the measured "
        "run-to-run spread):",
        *(f"  - {reason}" for reason in reasons),
        f"If the change is intended, re-record it with: {RERECORD_COMMAND}",
        "and commit the new file with the change that moved it, saying in the commit message why "
        "allocations or bytes per request changed.",
    ]
    return "\n".join(lines)
