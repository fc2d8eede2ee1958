"""Locust `LoadTestShape`s for the stage tables in `stages.py`: step, spike, soak, ramp."""

from __future__ import annotations

from locust import LoadTestShape

from rolescope.loadtests.stages import ShapeName, Stage, build_stages, stage_at


def make_shape(shape: ShapeName, users: int, spawn_rate: float, duration_s: float) -> type[LoadTestShape]:
    """A shape class for a locustfile to expose (Locust picks up the one shape class it finds)."""
    stages: list[Stage] = build_stages(shape, users, spawn_rate, duration_s)

    class RolescopeShape(LoadTestShape):
        def tick(self) -> tuple[int, float] | None:
            elapsed: float = self.get_run_time()  # type: ignore[no-untyped-call]
            stage = stage_at(stages, elapsed)
            return None if stage is None else (stage.users, stage.spawn_rate)

    RolescopeShape.__name__ = f"{shape.capitalize()}Shape"
    return RolescopeShape
