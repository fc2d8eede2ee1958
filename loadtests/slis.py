"""Client-side SLIs of a load run, computed from full-resolution samples.

Locust's own percentiles come from rounded buckets; these are exact order
statistics (linear interpolation between the two nearest samples), so a p99
moves when the slowest requests move.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rolescope.gate.goodput import goodput_share
from rolescope.gate.model import Objective
from rolescope.rundir import RequestSample

PERCENTILES: tuple[int, ...] = (50, 90, 95, 99)


@dataclass(frozen=True, slots=True)
class Distribution:
    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    mean: float
    count: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "p50": self.p50,
            "p90": self.p90,
            "p95": self.p95,
            "p99": self.p99,
            "max": self.max,
            "mean": self.mean,
            "count": self.count,
        }


EMPTY = Distribution(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)


def distribution(values: Sequence[float]) -> Distribution:
    if not values:
        return EMPTY
    data = np.asarray(values, dtype=float)
    p50, p90, p95, p99 = (float(v) for v in np.percentile(data, PERCENTILES))
    return Distribution(p50, p90, p95, p99, float(data.max()), float(data.mean()), int(data.size))


def thresholds_of(latency_objectives: Sequence[Objective]) -> dict[str, float]:
    """Seconds per latency figure, the strictest when two objectives judge the same one."""
    found: dict[str, float] = {}
    for objective in latency_objectives:
        if objective.metric is not None and objective.threshold_s is not None:
            found[objective.metric] = min(objective.threshold_s, found.get(objective.metric, math.inf))
    return found


def run_span(samples: Sequence[RequestSample]) -> float:
    """Seconds from the first intended send to the last answer."""
    if not samples:
        return 0.0
    first = min(s.intended_start for s in samples)
    last = max(s.intended_start + s.e2e_s for s in samples)
    return max(last - first, 1e-9)


def compute_slis(
    samples: Sequence[RequestSample],
    latency_objectives: Sequence[Objective] = (),
    duration_s: float | None = None,
) -> dict[str, Any]:
    """The `slis.json` document of a run; goodput holds each request to the policy's latency objectives."""
    ok = [s for s in samples if s.ok]
    duration = duration_s if duration_s and duration_s > 0 else run_span(samples)
    failures = len(samples) - len(ok)
    tokens = sum(s.output_tokens for s in ok)
    inputs = [s.input_tokens for s in ok if s.input_tokens is not None]
    return {
        "ttft_s": distribution([s.ttft_s for s in ok if s.ttft_s is not None]).to_dict(),
        "tpot_s": distribution([s.tpot_s for s in ok if s.tpot_s is not None]).to_dict(),
        "itl_s": distribution([gap for s in ok for gap in s.itl_s]).to_dict(),
        "e2e_s": distribution([s.e2e_s for s in ok]).to_dict(),
        "requests": len(samples),
        "failures": failures,
        "error_ratio": failures / len(samples) if samples else 0.0,
        "duration_s": duration,
        "throughput_rps": len(samples) / duration if duration else 0.0,
        "output_tokens_per_s": tokens / duration if duration else 0.0,
        "goodput": goodput_share(samples, latency_objectives),
        "thresholds_s": thresholds_of(latency_objectives),
        "streams_all_at_once": sum(1 for s in samples if s.all_at_once),
        "input_tokens_mean": float(np.mean(inputs)) if inputs else None,  # None: the target never said
    }
