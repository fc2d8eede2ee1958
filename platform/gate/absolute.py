"""Absolute checks: does the candidate, on its own, meet each SLO of the spec?

Computed from the full-resolution samples (every request), never from
histogram buckets, so a threshold that falls between buckets is judged exactly.
"""

from __future__ import annotations

from rolescope.gate.goodput import good_requests
from rolescope.gate.model import CheckResult, Objective, RunData
from rolescope.gate.runstats import metric_values, percentile
from rolescope.rundir import RequestSample


def _pct(value: float) -> str:
    return f"{100 * value:.2f} %"


def _latency_check(objective: Objective, samples: list[RequestSample], duration_s: float) -> CheckResult:
    assert objective.metric is not None and objective.threshold_s is not None
    values = metric_values(samples, objective.metric)
    good = sum(1 for v in values if v <= objective.threshold_s)
    share = good / len(values) if values else 0.0
    passed = bool(values) and share >= objective.objective
    threshold_ms = objective.threshold_s * 1000
    description = (
        f"{_pct(objective.objective)} of requests with {objective.metric.upper()} ≤ {threshold_ms:g} ms"
    )
    if not values:
        message = (
            f"no successful request measured {objective.metric.upper()}, so {objective.name} cannot be met"
        )
    else:
        message = f"{_pct(share)} of requests had {objective.metric.upper()} ≤ {threshold_ms:g} ms " + (
            f"(objective {_pct(objective.objective)})"
            if passed
            else f"— {_pct(objective.objective - share)} short of the objective {_pct(objective.objective)}"
        )
    return CheckResult(
        name=objective.name,
        kind="slo",
        description=description,
        figure=share,
        limit=objective.objective,
        direction="min",
        passed=passed,
        unit="ratio",
        statistics={
            "requests": len(values),
            "good": good,
            "threshold_s": objective.threshold_s,
            "p50_s": percentile(values, 50),
            "p95_s": percentile(values, 95),
            "p99_s": percentile(values, 99),
        },
        message=message,
    )


def _counts_as_error(sample: RequestSample, statuses: tuple[int, ...]) -> bool:
    return not sample.ok and (not statuses or sample.status in statuses)


def _error_check(objective: Objective, samples: list[RequestSample], duration_s: float) -> CheckResult:
    failed = sum(1 for s in samples if _counts_as_error(s, objective.statuses))
    ratio = failed / len(samples) if samples else 1.0
    limit = 1.0 - objective.objective
    passed = bool(samples) and ratio <= limit
    statuses: dict[str, int] = {}
    for s in samples:
        if _counts_as_error(s, objective.statuses):
            key = str(s.status) if s.status else (s.error or "error")[:40]
            statuses[key] = statuses.get(key, 0) + 1
    what = "failed" if not objective.statuses else "failed with " + "/".join(map(str, objective.statuses))
    message = f"{failed} of {len(samples)} requests {what} ({_pct(ratio)}; at most {_pct(limit)} allowed)"
    return CheckResult(
        name=objective.name,
        kind="slo",
        description=f"requests {what} ≤ {_pct(limit)}",
        figure=ratio,
        limit=limit,
        direction="max",
        passed=passed,
        unit="ratio",
        statistics={"requests": len(samples), "failed": failed, "failures_by_status": statuses},
        message=message,
    )


def _goodput_check(
    objective: Objective, samples: list[RequestSample], duration_s: float, latency: list[Objective]
) -> CheckResult:
    good = good_requests(samples, latency)
    share = good / len(samples) if samples else 0.0
    passed = bool(samples) and share >= objective.objective
    rate = good / duration_s if duration_s > 0 else 0.0
    return CheckResult(
        name=objective.name,
        kind="slo",
        description=f"goodput ≥ {_pct(objective.objective)} of requests "
        "(ok and within every threshold that applies: TTFT/TPOT for streams, end-to-end for all)",
        figure=share,
        limit=objective.objective,
        direction="min",
        passed=passed,
        unit="ratio",
        statistics={"requests": len(samples), "good": good, "goodput_rps": rate},
        message=f"{good} of {len(samples)} requests were good ({_pct(share)}, {rate:.2f} req/s); "
        f"objective {_pct(objective.objective)}",
    )


def absolute_checks(objectives: tuple[Objective, ...], runs: list[RunData]) -> list[CheckResult]:
    """One check per objective, over the candidate runs' samples pooled together."""
    samples = [s for run in runs for s in run.samples]
    duration = sum(run.duration_s for run in runs)
    latency = [o for o in objectives if o.sli == "latency"]
    results: list[CheckResult] = []
    for objective in objectives:
        if objective.sli == "latency":
            results.append(_latency_check(objective, samples, duration))
        elif objective.sli == "error_ratio":
            results.append(_error_check(objective, samples, duration))
        else:
            results.append(_goodput_check(objective, samples, duration, latency))
    return results
