"""Where to measure next: a probe for the order of magnitude, then bracketing and bisection on the rate.

Pure decisions over the steps measured so far. A step is *conclusive* when its
outcome is certain: it ran long enough for the percentiles it judges, or it
was stopped early because an SLO broke beyond recovery or the service
over-saturated. Short probe steps that end normally only say where to look;
the bracket — the highest rate that held below the lowest rate that failed —
is built from conclusive steps alone, so a lucky short probe cannot become the
answer.

Bisection is geometric (the midpoint of log-rates): capacities span orders of
magnitude, and the precision asked for is relative. The search stops when the
bracket is narrower than the precision (high ÷ low − 1 ≤ precision, so the
rate found is within that share below the truth if every judgement is right),
or when the time budget or the step limit would be exceeded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Phase = Literal["probe", "bracket", "bisect"]
StopReason = Literal["converged", "time budget", "step limit", "nothing held", "above max rate"]


@dataclass(frozen=True)
class SearchConfig:
    start_rate: float
    precision: float = 0.05
    growth: float = 2.0
    min_rate: float = 0.05
    max_rate: float = 5000.0
    time_budget_s: float = 600.0
    max_steps: int = 30

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.precision < 1:
            problems.append(f"precision must be in (0, 1), got {self.precision}")
        if self.growth <= 1:
            problems.append(f"growth must be > 1, got {self.growth}")
        if not 0 < self.min_rate < self.max_rate:
            problems.append(f"rates need 0 < min_rate < max_rate, got {self.min_rate} and {self.max_rate}")
        if not self.min_rate <= self.start_rate <= self.max_rate:
            problems.append(f"start_rate {self.start_rate} is outside [{self.min_rate}, {self.max_rate}]")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class StepResult:
    """What the search needs of a measured step."""

    rate: float
    passed: bool
    conclusive: bool
    phase: Phase
    wall_s: float = 0.0


@dataclass(frozen=True)
class Bracket:
    low: float | None  # the highest conclusive rate that held, below `high`
    high: float | None  # the lowest conclusive rate that failed

    @property
    def width(self) -> float | None:
        """high ÷ low − 1: the relative uncertainty of the capacity."""
        if self.low is None or self.high is None:
            return None
        return self.high / self.low - 1


@dataclass(frozen=True)
class NextStep:
    rate: float
    phase: Phase


@dataclass(frozen=True)
class Done:
    reason: StopReason
    bracket: Bracket


def bracket_of(steps: Sequence[StepResult]) -> Bracket:
    fails = [s.rate for s in steps if s.conclusive and not s.passed]
    high = min(fails) if fails else None
    passes = [s.rate for s in steps if s.conclusive and s.passed and (high is None or s.rate < high)]
    return Bracket(max(passes) if passes else None, high)


def _probe_finished(probes: Sequence[StepResult], config: SearchConfig) -> bool:
    passed = [p.rate for p in probes if p.passed]
    failed = [p.rate for p in probes if not p.passed]
    if passed and failed and min(failed) > min(passed):
        return True
    last = probes[-1] if probes else None
    if last is None:
        return False
    return (last.passed and last.rate >= config.max_rate) or (
        not last.passed and last.rate <= config.min_rate
    )


def _next_probe(probes: Sequence[StepResult], config: SearchConfig) -> float:
    if not probes:
        return config.start_rate
    last = probes[-1]
    if last.passed:
        return min(last.rate * config.growth, config.max_rate)
    return max(last.rate / config.growth, config.min_rate)


def _provisional(probes: Sequence[StepResult]) -> tuple[float | None, float | None]:
    """(highest passing probe below the lowest failing one, that failing one)."""
    failed = [p.rate for p in probes if not p.passed]
    high = min(failed) if failed else None
    passed = [p.rate for p in probes if p.passed and (high is None or p.rate < high)]
    return (max(passed) if passed else None), high


def _known_rates(steps: Sequence[StepResult]) -> set[float]:
    return {s.rate for s in steps if s.conclusive}


def next_step(
    steps: Sequence[StepResult], config: SearchConfig, elapsed_s: float = 0.0, next_step_s: float = 0.0
) -> NextStep | Done:
    """The next rate to measure, or why the search is over; `next_step_s` estimates its wall time."""
    bracket = bracket_of(steps)
    if bracket.width is not None and bracket.width <= config.precision:
        return Done("converged", bracket)
    if len(steps) >= config.max_steps:
        return Done("step limit", bracket)
    if steps and elapsed_s + next_step_s > config.time_budget_s:
        return Done("time budget", bracket)
    probes = [s for s in steps if s.phase == "probe"]
    if not _probe_finished(probes, config):
        return NextStep(_next_probe(probes, config), "probe")
    return _after_probe(steps, probes, bracket, config)


def _after_probe(
    steps: Sequence[StepResult], probes: Sequence[StepResult], bracket: Bracket, config: SearchConfig
) -> NextStep | Done:
    low, high = bracket.low, bracket.high
    guess_low, guess_high = _provisional(probes)
    known = _known_rates(steps)
    if low is None:
        # No conclusive pass yet: confirm the provisional one, or step down from the lowest failure.
        candidate = guess_low if guess_low is not None and (high is None or guess_low < high) else None
        if candidate is None or candidate in known:
            candidate = (high if high is not None else config.min_rate * config.growth) / config.growth
        if candidate < config.min_rate * (1 - 1e-9):
            return Done("nothing held", bracket)
        return NextStep(max(candidate, config.min_rate), "bracket")
    if high is None:
        candidate = guess_high if guess_high is not None and guess_high > low else None
        if candidate is None or candidate in known:
            candidate = low * config.growth
        if candidate > config.max_rate * (1 + 1e-9):
            return Done("above max rate", bracket)
        return NextStep(min(candidate, config.max_rate), "bracket")
    return NextStep(math.sqrt(low * high), "bisect")


def steps_needed(start_rate: float, truth: float, config: SearchConfig) -> int:
    """An upper bound on the steps a noiseless search takes (for tests and time estimates)."""
    decades = abs(math.log(max(truth, config.min_rate) / start_rate)) / math.log(config.growth)
    bisections = math.log2(math.log(config.growth) / math.log1p(config.precision)) + 1
    return int(2 * (decades + 2) + bisections + 3)
