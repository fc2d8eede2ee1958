"""The plain data the gate judges and the verdict it hands back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rolescope.gate.mirroring import MirroringSection
    from rolescope.profiling.compare import LayerChange
    from rolescope.profiling.layers import LayerShare

from rolescope.rundir import LatencyMetric, RequestSample

# What a run directory could measure (rolescope.gate.coverage reads which it did).
PROFILE = "profile"
MEMORY = "memory"
SERVER = "server-side metrics"
KINDS = (PROFILE, MEMORY, SERVER)
WHAT = {
    PROFILE: "CPU profile of the service (py-spy)",
    MEMORY: "allocations and bytes per request (memray)",
    SERVER: "service CPU seconds and peak RSS (its process)",
}


@dataclass(frozen=True, slots=True)
class Measurement:
    """One kind of figure: measured or not, and in either case a sentence saying why or how."""

    kind: str
    measured: bool
    detail: str

    @property
    def what(self) -> str:
        return WHAT.get(self.kind, self.kind)



CheckKind = Literal["slo", "relative", "memory", "capacity"]
# "max": the figure must stay at or below the limit; "min": at or above it.
Direction = Literal["max", "min"]


@dataclass(frozen=True)
class Objective:
    """One SLO the candidate must meet on its own (absolute check).

    `sli` is `error_ratio` (objective = share of requests that succeed),
    `latency` (objective = share of successful requests whose `metric` is at
    most `threshold_s`) or `goodput` (objective = share of all requests that
    succeed *and* meet every latency threshold). An error-ratio objective with
    `statuses` counts only failures with those HTTP statuses (504 = inference
    timeout); without, every failed request counts.
    """

    name: str
    sli: Literal["error_ratio", "latency", "goodput"]
    objective: float
    metric: LatencyMetric | None = None
    threshold_s: float | None = None
    statuses: tuple[int, ...] = ()


@dataclass(frozen=True)
class RelativeTolerance:
    """How much a per-run figure may worsen against the reference before it counts.

    `metric` names a per-run statistic (see `runstats.RUN_STATISTICS`);
    `tolerance` is relative (0.10 = +10 %) unless `absolute` is set, as for
    error ratios where 0 → 0.5 % has no meaningful relative size.
    """

    metric: str
    tolerance: float
    absolute: bool = False


@dataclass(frozen=True)
class GatePolicy:
    objectives: tuple[Objective, ...]
    relative: tuple[RelativeTolerance, ...] = ()
    alpha: float = 0.05
    allocations_tolerance: float = 0.05
    bytes_tolerance: float = 0.04
    # Percent the capacity may drop below the reference's bracket before the gate fails.
    capacity_drop_pct: float = 10.0
    source: str = "built-in"

    @property
    def latency_objectives(self) -> tuple[Objective, ...]:
        """The latency objectives: what goodput holds every request to."""
        return tuple(o for o in self.objectives if o.sli == "latency")


@dataclass
class RunData:
    """One load run directory, loaded."""

    path: str
    samples: list[RequestSample]
    slis: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    # Service-side figures recorded by `rolescope tune` (CPU seconds of the service process).
    service: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        if not self.samples:
            return 0.0
        first = min(s.start for s in self.samples)
        last = max(s.start + s.e2e_s for s in self.samples)
        return max(last - first, 1e-9)


@dataclass(frozen=True)
class CheckResult:
    name: str
    kind: CheckKind
    description: str
    figure: float
    limit: float
    direction: Direction
    passed: bool
    unit: str = ""
    statistics: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    @property
    def margin(self) -> float:
        """Headroom to the limit in the figure's unit: positive passes, negative is how far it missed."""
        return self.limit - self.figure if self.direction == "max" else self.figure - self.limit


@dataclass(frozen=True)
class FunctionShift:
    """A function whose share of the profile changed between reference and candidate."""

    function: str
    reference_share: float
    candidate_share: float

    @property
    def delta(self) -> float:
        return self.candidate_share - self.reference_share


@dataclass
class Verdict:
    checks: list[CheckResult]
    suspects: list[FunctionShift] = field(default_factory=list)
    candidate_runs: list[str] = field(default_factory=list)
    reference_runs: list[str] = field(default_factory=list)
    policy_source: str = ""
    notes: list[str] = field(default_factory=list)
    # (function, share of CPU samples where it was the leaf): where the candidate spends its time,
    # shown when there is no reference profile to compare with.
    hot_functions: list[tuple[str, float]] = field(default_factory=list)
    # The candidate's CPU samples by layer (framework/server, event loop, business, ...), and with a
    # reference profile, how each layer's share changed: read before the function tables.
    layers: list[LayerShare] = field(default_factory=list)
    layer_shifts: list[LayerChange] = field(default_factory=list)
    # Profile, memory and server-side metrics: measured or not, and why (a foreign target has none).
    measurements: list[Measurement] = field(default_factory=list)
    # Shadow mirroring during the runs (counts and the pairs' diff); None when it did not run.
    mirroring: MirroringSection | None = None

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.passed]
