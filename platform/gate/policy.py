"""From the SLO spec (`alerts/slo.yaml`) to the typed policy: objectives and tolerances.

The spec is parsed once, by its strict model (`alerts/spec.py`); this module
maps that model onto what is measured client-side from samples. The gate, the
tuning loop and its sweep, `rolescope load`'s goodput, the overload run and the
memory comparison all take their objectives and tolerances from here.
"""

from __future__ import annotations

from pathlib import Path

from rolescope.alerts.spec import LatencyObjective, Slo, SloSpec, load_slo_spec
from rolescope.exporters import names
from rolescope.gate.model import GatePolicy, Objective, RelativeTolerance

# Figures compared A/B even when the spec names no tolerance for them: the error ratio
# (absolute, in ratio points) and service CPU per token, which is where a CPU
# regression shows before it shows in latency.
DEFAULT_RELATIVE: tuple[RelativeTolerance, ...] = (
    RelativeTolerance("error_ratio", 0.005, absolute=True),
    RelativeTolerance("cpu_per_token_ms", 0.10),
)


def _latency(objective: LatencyObjective) -> Objective:
    return Objective(objective.name, "latency", objective.objective, objective.metric, objective.threshold_s)


def _error_ratio(slo: Slo) -> Objective | None:
    events = slo.sli.events
    if events is None:
        return None
    fraction = round(slo.objective / 100, 12)
    if names.INFERENCE_TIMEOUTS_TOTAL in events.error_query:
        # Timeouts reach the client as 504s: already failures in the availability objective.
        return Objective(slo.name, "error_ratio", fraction, statuses=(504,))
    return Objective(slo.name, "error_ratio", fraction)


def policy_from_spec(spec: SloSpec, source: str = "alerts/slo.yaml") -> GatePolicy:
    """The typed policy of a validated spec (every value already checked by the spec's model)."""
    latency = {o.name: _latency(o) for o in spec.latency_objectives()}
    objectives: list[Objective] = []
    for slo in spec.slos:
        objective = latency.get(slo.name) or _error_ratio(slo)
        if objective is not None:
            objectives.append(objective)
    objectives.append(Objective("goodput", "goodput", spec.gate.goodput.objective))
    # The spec's model names exactly the figures it accepts; runstats.RUN_STATISTICS computes each.
    relative = [RelativeTolerance(metric, tolerance) for metric, tolerance in spec.gate.relative_tolerance]
    named = {r.metric for r in relative}
    relative += [r for r in DEFAULT_RELATIVE if r.metric not in named]
    return GatePolicy(
        objectives=tuple(objectives),
        relative=tuple(relative),
        alpha=spec.gate.alpha,
        allocations_tolerance=spec.gate.memory.allocations_per_request,
        bytes_tolerance=spec.gate.memory.bytes_per_request,
        capacity_drop_pct=spec.gate.capacity_drop_pct,
        source=source,
    )


def load_policy(path: Path | None = None) -> GatePolicy:
    """The policy of an SLO spec file, the bundled `alerts/slo.yaml` without a path; errors name fields."""
    label = "alerts/slo.yaml (bundled)" if path is None else str(path)
    return policy_from_spec(load_slo_spec(path), source=label)
