"""Load shapes as pure stage tables: step, spike, soak and ramp.

`shapes.py` wraps these in Locust `LoadTestShape`s; keeping the maths here lets
it be tested without importing Locust (which monkey-patches the standard library).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ShapeName = Literal["step", "spike", "soak", "ramp"]
SHAPES: tuple[str, ...] = ("step", "spike", "soak", "ramp")


@dataclass(frozen=True, slots=True)
class Stage:
    until_s: float  # the stage ends at this many seconds into the run
    users: int
    spawn_rate: float


def build_stages(shape: ShapeName, users: int, spawn_rate: float, duration_s: float) -> list[Stage]:
    """Stages reaching `users` at their peak within `duration_s` seconds."""
    if users < 1 or spawn_rate <= 0 or duration_s <= 0:
        raise ValueError("a load shape needs users >= 1, spawn rate > 0 and a positive duration")
    if shape == "step":
        # Four equal steps up to the peak: where does latency bend?
        steps = min(4, users)
        return [
            Stage(duration_s * (i + 1) / steps, max(1, round(users * (i + 1) / steps)), spawn_rate)
            for i in range(steps)
        ]
    if shape == "spike":
        # A quarter of the load, a sudden burst to the peak, then back: does it recover?
        base = max(1, users // 4)
        burst = max(spawn_rate, float(users))
        return [
            Stage(duration_s * 0.3, base, spawn_rate),
            Stage(duration_s * 0.6, users, burst),
            Stage(duration_s, base, burst),
        ]
    if shape == "soak":
        # Steady load for the whole run: leaks and drift show up over time.
        return [Stage(duration_s, users, spawn_rate)]
    if shape == "ramp":
        # A linear climb, one user at a time, to find the knee of the curve.
        per_user = duration_s / users
        return [Stage(per_user * (i + 1), i + 1, max(spawn_rate, 1.0)) for i in range(users)]
    raise ValueError(f"unknown load shape {shape!r}; expected one of {', '.join(SHAPES)}")


def stage_at(stages: list[Stage], elapsed_s: float) -> Stage | None:
    """The stage in force `elapsed_s` seconds into the run; None once the run is over."""
    for stage in stages:
        if elapsed_s < stage.until_s:
            return stage
    return None
