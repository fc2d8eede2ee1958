"""Per-run statistics: one figure per run, which the A/B comparison ranks across runs.

Comparing runs rather than pooled requests is benchstat's practice: requests
inside one run are correlated (same warm caches, same neighbours), runs are the
independent repetitions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from rolescope.gate.model import RunData
from rolescope.rundir import LatencyMetric, RequestSample


def metric_values(samples: Iterable[RequestSample], metric: LatencyMetric) -> list[float]:
    """The successful requests' values of one latency metric (ITL flattens every gap)."""
    return [value for sample in samples if sample.ok for value in sample.latencies(metric)]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def error_ratio(samples: list[RequestSample]) -> float:
    return sum(1 for s in samples if not s.ok) / len(samples) if samples else 0.0


def throughput_rps(run: RunData) -> float:
    return len(run.samples) / run.duration_s if run.samples else 0.0


def cpu_per_token_ms(run: RunData) -> float:
    """Service CPU milliseconds per output token, when `tune` recorded the service's CPU time."""
    cpu = run.service.get("cpu_seconds")
    tokens = sum(s.output_tokens for s in run.samples if s.ok)
    if cpu is None or tokens == 0:
        return float("nan")
    return 1000.0 * float(cpu) / tokens


def _latency(metric: LatencyMetric, q: float) -> Callable[[RunData], float]:
    return lambda run: percentile(metric_values(run.samples, metric), q)


# name → (description, unit, function). Every figure is "higher is worse" except those in
# HIGHER_IS_BETTER, which the A/B comparison turns around.
RUN_STATISTICS: dict[str, tuple[str, str, Callable[[RunData], float]]] = {
    "ttft_p50": ("median time to first token", "s", _latency("ttft", 50)),
    "ttft_p95": ("p95 time to first token", "s", _latency("ttft", 95)),
    "ttft_p99": ("p99 time to first token", "s", _latency("ttft", 99)),
    "e2e_p50": ("median end-to-end latency", "s", _latency("e2e", 50)),
    "e2e_p95": ("p95 end-to-end latency", "s", _latency("e2e", 95)),
    "tpot_p50": ("median time per output token", "s", _latency("tpot", 50)),
    "tpot_p95": ("p95 time per output token", "s", _latency("tpot", 95)),
    "itl_p95": ("p95 inter-token latency", "s", _latency("itl", 95)),
    "error_ratio": ("error ratio", "", lambda run: error_ratio(run.samples)),
    "cpu_per_token_ms": ("service CPU per output token", "ms", cpu_per_token_ms),
    "throughput": ("throughput", "req/s", throughput_rps),
}
HIGHER_IS_BETTER: frozenset[str] = frozenset({"throughput"})


def run_statistic(name: str, runs: list[RunData]) -> list[float]:
    """The statistic for each run, leaving out runs where it is undefined (NaN)."""
    function = RUN_STATISTICS[name][2]
    values = [function(run) for run in runs]
    return [v for v in values if not np.isnan(v)]
