"""How long a step runs, and when its outcome is already certain before it ends.

A step must hold enough requests for the percentiles it judges: an objective of
99 % leaves 1 % of requests for the tail, so seeing `tail_requests` of them
takes `tail_requests ÷ 0.01` requests. The first seconds of a step (connections
opening, a cold queue) are warm-up and not judged.

A step may stop early once its outcome cannot change:
- an SLO is broken beyond recovery: more requests failed than the error budget
  allows for the *whole planned step*, so even if every remaining request
  succeeded the step would still fail;
- over-saturation: arrivals outrun completions and the number of requests in
  flight keeps growing, so latency grows without bound for as long as it runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rolescope.gate.model import GatePolicy

# Least-squares slope of in-flight requests, as a share of the arrival rate, above which the
# queue is growing rather than fluctuating: a fifth of the arrivals are not being completed (a queue
# near saturation wanders widely; smaller excesses are left to the judgement at the end of the step).
SATURATION_GROWTH_SHARE = 0.2
SATURATION_WINDOW_S = 3.0
SATURATION_MIN_POINTS = 6
# Below this share of the arrival rate answered, arrivals certainly outrun completions.
COMPLETION_SHARE = 0.5


@dataclass(frozen=True)
class StepPlan:
    rate: float
    duration_s: float
    warmup_s: float
    long_enough: bool  # holds every objective's tail; False when the duration limit cut it short

    @property
    def planned_requests(self) -> float:
        return self.rate * self.duration_s


def error_budget(policy: GatePolicy) -> tuple[str, float] | None:
    """The SLO whose share of failures allowed is smallest, and that share (goodput counts failures too)."""
    budgets = [(o.name, 1.0 - o.objective) for o in policy.objectives if o.sli in ("error_ratio", "goodput")]
    return min(budgets, key=lambda item: item[1]) if budgets else None


def requests_needed(policy: GatePolicy, tail_requests: int = 1, floor: int = 100) -> int:
    """Requests a step needs so each objective's tail holds at least `tail_requests` of them.

    99.9 % availability needs 1000 requests before a single failure is within budget at all.
    """
    shares = [1.0 - o.objective for o in policy.objectives if o.objective < 1.0]
    smallest = min(shares, default=0.05)
    return max(floor, math.ceil(tail_requests / max(smallest, 1e-6) - 1e-9))


def plan_step(
    rate: float,
    min_requests: int,
    *,
    warmup_s: float = 2.0,
    min_duration_s: float = 3.0,
    max_duration_s: float = 60.0,
) -> StepPlan:
    """A step at `rate` long enough for `min_requests` judged requests, within the duration limits."""
    wanted = warmup_s + min_requests / rate
    duration = min(max(wanted, min_duration_s), max_duration_s)
    return StepPlan(rate, duration, warmup_s, long_enough=wanted <= max_duration_s)


# Users a loaded machine starts per second (Locust spawns the whole open-model pool at once);
# the sends of a pool still starting bunch up, so that time is warm-up too.
SPAWNED_PER_S = 100.0


def with_spawn_allowance(plan: StepPlan, users: int) -> StepPlan:
    """The plan lengthened by the time its user pool takes to start, that time added to the warm-up."""
    allowance = users / SPAWNED_PER_S
    return replace(plan, duration_s=plan.duration_s + allowance, warmup_s=plan.warmup_s + allowance)


def pool_cover_s(policy: GatePolicy, floor_s: float = 1.0, ceiling_s: float = 10.0) -> float:
    """Seconds of arrivals the open-model user pool covers: the longest latency threshold.

    While every SLO holds, the mean time in the system is below every threshold, so by
    Little's law a pool of rate × threshold users is never the bottleneck; a pool starved by a
    slower service delays sends, which counts in latency (from the intended time) as it should.
    """
    thresholds = [o.threshold_s for o in policy.latency_objectives if o.threshold_s is not None]
    return min(max(max(thresholds, default=ceiling_s), floor_s), ceiling_s)


@dataclass(frozen=True)
class StepSoFar:
    """What is known part-way through a step (server-side counts since its start)."""

    elapsed_s: float
    requests: int
    failures: int
    in_flight: Sequence[tuple[float, float]]  # (seconds into the step, requests in flight)
    # Before this many seconds into the step the queue is still filling (the first requests have not
    # had one service time to finish), which looks like growth but is not saturation.
    settle_s: float = 0.0
    completed: Sequence[tuple[float, float]] = ()  # (seconds into the step, requests answered so far)


def broken_beyond_recovery(so_far: StepSoFar, plan: StepPlan, budget: tuple[str, float] | None) -> str | None:
    if budget is None:
        return None
    name, share = budget
    planned = max(plan.rate * (plan.duration_s - plan.warmup_s), so_far.requests)
    allowed = share * planned
    if so_far.failures > allowed:
        return (
            f"{name} broken beyond recovery: {so_far.failures} failures already, "
            f"{allowed:.1f} allowed in the {planned:.0f} requests planned"
        )
    return None


def _slope(points: Sequence[tuple[float, float]]) -> float:
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread <= 0:
        return 0.0
    return sum((t - mean_t) * (y - mean_y) for t, y in points) / spread


def over_saturated(so_far: StepSoFar, rate: float) -> str | None:
    """In-flight requests grew steadily over the last part of the step (at least SATURATION_WINDOW_S)."""
    points = [p for p in so_far.in_flight if p[0] >= so_far.settle_s]
    if len(points) < SATURATION_MIN_POINTS or points[-1][0] - points[0][0] < SATURATION_WINDOW_S:
        return None
    start = max(points[-1][0] - max(SATURATION_WINDOW_S, 0.5 * (points[-1][0] - points[0][0])), 0.0)
    window = [p for p in points if p[0] >= start]
    if len(window) < SATURATION_MIN_POINTS:
        return None
    slope = _slope(window)
    span = window[-1][0] - window[0][0]
    growth = window[-1][1] - window[0][1]
    threshold = max(SATURATION_GROWTH_SHARE * rate, 0.5)
    third = span / 3
    early = [y for t, y in window if t <= window[0][0] + third]
    late = [y for t, y in window if t >= window[-1][0] - third]
    steady_rise = sum(late) / len(late) - sum(early) / len(early) >= threshold * third
    if slope >= threshold and growth >= threshold * span + 3 and steady_rise:
        return (
            f"over-saturated: requests in flight grew from {window[0][1]:.0f} to {window[-1][1]:.0f} "
            f"in {span:.1f} s ({slope:.1f}/s at {rate:.3g} req/s offered)"
        )
    return None


def completions_lag(so_far: StepSoFar, rate: float) -> str | None:
    """Answers come back well below the arrival rate for a sustained window, the queue not draining.

    The load generator's user pool is finite, so a saturated service can cap the in-flight count
    (every user waiting) instead of letting it grow; the shortfall of completions still shows.
    """
    points = [p for p in so_far.completed if p[0] >= so_far.settle_s]
    if len(points) < SATURATION_MIN_POINTS or points[-1][0] - points[0][0] < SATURATION_WINDOW_S:
        return None
    span = points[-1][0] - points[0][0]
    # Poisson arrivals: with 50 expected, fewer than half answered is a 3.5-sigma shortfall, so a
    # service that keeps up is not stopped by chance; a smaller lag is left to the step's judgement.
    if rate * span < 50:
        return None
    achieved = (points[-1][1] - points[0][1]) / span
    in_flight = [p for p in so_far.in_flight if p[0] >= points[0][0]]
    draining = bool(in_flight) and in_flight[-1][1] < in_flight[0][1]
    if achieved < COMPLETION_SHARE * rate and not draining:
        return (
            f"over-saturated: {achieved:.3g} answers/s for {rate:.3g} req/s offered over {span:.1f} s, "
            f"{in_flight[-1][1] if in_flight else 0:.0f} in flight"
        )
    return None


def stop_reason(so_far: StepSoFar, plan: StepPlan, budget: tuple[str, float] | None) -> str | None:
    """Why the step's outcome is already certain (it fails), or None to keep measuring."""
    return (
        broken_beyond_recovery(so_far, plan, budget)
        or over_saturated(so_far, plan.rate)
        or completions_lag(so_far, plan.rate)
    )
