"""From the SLO spec (`alerts/slo.yaml`) to the gate's policy: objectives and tolerances.

The spec is the single source of truth; this module only maps its plain data
(the YAML as a mapping) onto what the gate measures client-side from samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rolescope.errors import ConfigError
from rolescope.exporters import names
from rolescope.gate.model import GatePolicy, LatencyMetric, Objective, RelativeTolerance
from rolescope.gate.runstats import RUN_STATISTICS

# Which client-side latency a server histogram's SLO is judged on.
HISTOGRAM_METRICS: dict[str, LatencyMetric] = {
    names.GENAI_TTFT: "ttft",
    names.GENAI_TPOT: "tpot",
    names.GENAI_REQUEST_DURATION: "e2e",
    names.HTTP_REQUEST_DURATION: "e2e",
    names.LOAD_TTFT: "ttft",
    names.LOAD_REQUEST_DURATION: "e2e",
}

# Figures compared A/B even when the spec names no tolerance for them: the error ratio
# (absolute, in ratio points) and service CPU per token, which is where a CPU
# regression shows before it shows in latency.
DEFAULT_RELATIVE: tuple[RelativeTolerance, ...] = (
    RelativeTolerance("error_ratio", 0.005, absolute=True),
    RelativeTolerance("cpu_per_token_ms", 0.10),
)
DEFAULT_GOODPUT_OBJECTIVE = 0.95


def _objective_fraction(slo: Mapping[str, Any], where: str) -> float:
    value = float(slo.get("objective", 0))
    # Sloth writes objectives as percentages (99.9); accept fractions too.
    fraction = round(value / 100, 12) if value > 1 else value
    if not 0 < fraction < 1:
        raise ConfigError(f"{where}: objective {value!r} is not a percentage between 0 and 100")
    return fraction


def _objective(slo: Mapping[str, Any], where: str) -> Objective | None:
    name = str(slo.get("name", where))
    sli = slo.get("sli") or {}
    fraction = _objective_fraction(slo, where)
    latency = sli.get("latency")
    if latency:
        histogram = str(latency.get("histogram", ""))
        metric = HISTOGRAM_METRICS.get(histogram)
        if metric is None:
            return None  # a server-side latency the load generator cannot see: left to the alerts
        return Objective(name, "latency", fraction, metric, float(latency["threshold"]))
    events = sli.get("events") or {}
    error_query = str(events.get("error_query", ""))
    if names.INFERENCE_TIMEOUTS_TOTAL in error_query:
        # Timeouts reach the client as 504s: already failures in the availability objective.
        return Objective(name, "error_ratio", fraction, statuses=(504,))
    return Objective(name, "error_ratio", fraction)


def policy_from_mapping(spec: Mapping[str, Any], source: str = "alerts/slo.yaml") -> GatePolicy:
    objectives: list[Objective] = []
    for index, slo in enumerate(spec.get("slos") or []):
        objective = _objective(slo, f"{source}: slos[{index}]")
        if objective is not None:
            objectives.append(objective)
    gate = spec.get("gate") or {}
    relative: list[RelativeTolerance] = []
    for metric, tolerance in (gate.get("relative_tolerance") or {}).items():
        if metric not in RUN_STATISTICS:
            known = ", ".join(sorted(RUN_STATISTICS))
            raise ConfigError(f"{source}: gate.relative_tolerance.{metric} is not a known figure ({known})")
        relative.append(RelativeTolerance(str(metric), float(tolerance)))
    named = {r.metric for r in relative}
    relative += [r for r in DEFAULT_RELATIVE if r.metric not in named]
    goodput = float((gate.get("goodput") or {}).get("objective", DEFAULT_GOODPUT_OBJECTIVE))
    objectives.append(Objective("goodput", "goodput", goodput))
    memory = gate.get("memory") or {}
    return GatePolicy(
        objectives=tuple(objectives),
        relative=tuple(relative),
        alpha=float(gate.get("alpha", 0.05)),
        allocations_tolerance=float(memory.get("allocations_per_request", 0.05)),
        bytes_tolerance=float(memory.get("bytes_per_request", 0.04)),
        source=source,
    )
