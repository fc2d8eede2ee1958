"""Client-side SLIs of a load run, computed from full-resolution samples.

Locust's own percentiles come from rounded buckets; these are exact order
statistics (linear interpolation between the two nearest samples), so a p99
moves when the slowest requests move.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rolescope.loadtests.samples import RequestSample

PERCENTILES: tuple[int, ...] = (50, 90, 95, 99)
# Used when no SLO spec is available: the defaults of alerts/slo.yaml.
FALLBACK_THRESHOLDS: dict[str, float] = {"ttft": 0.5, "e2e": 5.0}


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


def meets_slo(sample: RequestSample, thresholds: dict[str, float]) -> bool:
    """A request is good when it succeeded and met every latency objective at once."""
    if not sample.ok:
        return False
    if "e2e" in thresholds and sample.e2e_s > thresholds["e2e"]:
        return False
    ttft = sample.ttft_s if sample.ttft_s is not None else sample.e2e_s
    return not ("ttft" in thresholds and ttft > thresholds["ttft"])


def run_span(samples: Sequence[RequestSample]) -> float:
    """Seconds from the first intended send to the last answer."""
    if not samples:
        return 0.0
    first = min(s.intended_start for s in samples)
    last = max(s.intended_start + s.e2e_s for s in samples)
    return max(last - first, 1e-9)


def compute_slis(
    samples: Sequence[RequestSample],
    thresholds: dict[str, float] | None = None,
    duration_s: float | None = None,
) -> dict[str, Any]:
    """The `slis.json` document of a run."""
    limits = dict(FALLBACK_THRESHOLDS if thresholds is None else thresholds)
    ok = [s for s in samples if s.ok]
    duration = duration_s if duration_s and duration_s > 0 else run_span(samples)
    failures = len(samples) - len(ok)
    tokens = sum(s.output_tokens for s in ok)
    good = sum(1 for s in samples if meets_slo(s, limits))
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
        "goodput": good / len(samples) if samples else 0.0,
        "thresholds_s": limits,
        "streams_all_at_once": sum(1 for s in samples if s.all_at_once),
    }


def slo_thresholds() -> tuple[dict[str, float], str]:
    """Latency thresholds from the SLO spec when it is available, else the fallback; and the source."""
    try:
        from rolescope.alerts.spec import load_slo_spec
    except ImportError:
        return dict(FALLBACK_THRESHOLDS), "fallback"
    try:
        spec = load_slo_spec()
        limits = {k: float(v) for k, v in spec.latency_thresholds().items() if k in ("ttft", "e2e")}
    except Exception:  # a broken spec must not hide the run's figures; the gate reports it
        return dict(FALLBACK_THRESHOLDS), "fallback"
    return (limits or dict(FALLBACK_THRESHOLDS)), "slo-spec"
