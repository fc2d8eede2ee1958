"""Pure comparison of latency figures across load tools.

Percentiles, agreement with a reference tool, error against a known truth.

Every tool's figures are brought to the same three per-request latencies, in
milliseconds:

- `ttft`: request sent to first content token;
- `itl`: time per output token after the first, per request
  ((end-to-end - TTFT) / (output tokens - 1)): AIPerf's "inter token latency",
  GuideLLM's `inter_token_latency_ms`, rolescope's TPOT;
- `e2e`: request sent to last byte.

Agreement with the reference tool (AIPerf) is judged per percentile: within
10 % of the reference value or 3 ms, whichever is larger.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

FIGURES: tuple[str, ...] = ("ttft", "itl", "e2e")
FIGURE_LABELS: Mapping[str, str] = {"ttft": "TTFT", "itl": "ITL (TPOT)", "e2e": "end-to-end"}
PERCENTILES: tuple[int, ...] = (50, 90, 99)
RELATIVE_TOLERANCE = 0.10
ABSOLUTE_TOLERANCE_MS = 3.0

Percentiles = dict[str, float]  # "p50" -> milliseconds


@dataclass(frozen=True, slots=True)
class ToolFigures:
    """One tool's per-request latency samples, in milliseconds, and how many requests failed."""

    tool: str
    samples_ms: Mapping[str, Sequence[float]]
    failures: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def requests(self) -> int:
        return len(self.samples_ms.get("e2e", ()))

    def percentiles(self) -> dict[str, Percentiles]:
        return {figure: percentiles_ms(self.samples_ms.get(figure, ())) for figure in FIGURES}


def percentiles_ms(values: Sequence[float]) -> Percentiles:
    """p50/p90/p99 by linear interpolation between the nearest samples; empty when there are none."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return {}
    found = np.percentile(np.asarray(finite, dtype=float), PERCENTILES)
    return {f"p{p}": float(v) for p, v in zip(PERCENTILES, found, strict=True)}


def tolerance_ms(reference_ms: float) -> float:
    return max(RELATIVE_TOLERANCE * abs(reference_ms), ABSOLUTE_TOLERANCE_MS)


@dataclass(frozen=True, slots=True)
class Difference:
    figure: str
    percentile: str
    value_ms: float
    reference_ms: float

    @property
    def delta_ms(self) -> float:
        return self.value_ms - self.reference_ms

    @property
    def delta_share(self) -> float:
        return self.delta_ms / self.reference_ms if self.reference_ms else math.inf

    @property
    def within(self) -> bool:
        return abs(self.delta_ms) <= tolerance_ms(self.reference_ms)


def differences(tool: Mapping[str, Percentiles], reference: Mapping[str, Percentiles]) -> list[Difference]:
    """Every percentile both have, in figure then percentile order."""
    found: list[Difference] = []
    for figure in FIGURES:
        mine, theirs = tool.get(figure, {}), reference.get(figure, {})
        for p in PERCENTILES:
            key = f"p{p}"
            if key in mine and key in theirs:
                found.append(Difference(figure, key, mine[key], theirs[key]))
    return found


def all_within(diffs: Sequence[Difference]) -> bool:
    return bool(diffs) and all(d.within for d in diffs)


def truth_errors(
    tool: Mapping[str, Percentiles], truth_ms: Mapping[str, float]
) -> dict[str, dict[str, float]]:
    """Measured minus true milliseconds, per figure with a known truth and per percentile."""
    return {
        figure: {key: value - truth_ms[figure] for key, value in tool.get(figure, {}).items()}
        for figure in FIGURES
        if figure in truth_ms
    }


def mock_truth_ms(ttft_ms: float, itl_ms: float, output_tokens: int) -> dict[str, float]:
    """What a server with fixed timing sends: first token after TTFT, each next one ITL later."""
    return {"ttft": ttft_ms, "itl": itl_ms, "e2e": ttft_ms + itl_ms * (output_tokens - 1)}


def flat_figures(
    prefix: str, values: Mapping[str, Mapping[str, float]], suffix: str = "_ms"
) -> dict[str, float]:
    """`{prefix}.{figure}.{p50}_ms` keys, for the benchmark runner's JSON."""
    return {
        f"{prefix}.{figure}.{key}{suffix}": float(value)
        for figure, by_key in values.items()
        for key, value in by_key.items()
    }
