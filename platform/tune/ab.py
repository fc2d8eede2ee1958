"""Interleaved A/B on one machine: several service variants side by side, their load runs alternating.

Alternating A B A B … spreads whatever the machine does meanwhile (a noisy
neighbour, thermal throttling, a cron job) over every variant alike, which is
what lets the gate compare runs of different variants with a rank test. Used
by the accuracy benchmark and the tests to plant regressions with fault knobs;
the same directories can be judged later with `rolescope gate`.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolescope.gate.policy import load_policy
from rolescope.rundir import MEMORY_FILE, SERVICE_LOG
from rolescope.tune.loop import TuneOutcome, judge_directory
from rolescope.tune.trial import Status, TrialPlan, measure_memory, one_load_run, service_env, warm_up


@dataclass
class Arm:
    """One variant of the service: its fault knobs and settings, and how many load runs it gets."""

    name: str
    faults: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    runs: int = 5
    measure_memory: bool = False


@dataclass
class AbPlan:
    out: Path
    arms: list[Arm]
    duration_s: float = 3.0
    speed: float = 10.0
    users: int = 20
    profile: bool = False
    memory_limit: int | None = 60
    roles_path: Path | None = None


def _plan(ab: AbPlan, arm: Arm) -> TrialPlan:
    return TrialPlan(
        out=ab.out / arm.name,
        runs=arm.runs,
        duration_s=ab.duration_s,
        speed=ab.speed,
        users=ab.users,
        faults=dict(arm.faults),
        settings=dict(arm.settings),
        profile=ab.profile,
        memory=arm.measure_memory,
        memory_limit=ab.memory_limit,
        roles_path=ab.roles_path,
    )


def _prefixed(status: Status, prefix: str) -> Status:
    return lambda message: status(f"{prefix}: {message}")


def run_interleaved(ab: AbPlan, status: Status) -> dict[str, Path]:
    """Launch every arm's service, then run load round-robin; returns each arm's directory."""
    from rolescope.serving.launcher import launch_service

    plans = {arm.name: _plan(ab, arm) for arm in ab.arms}
    with tempfile.TemporaryDirectory(prefix="rolescope-ab-") as scratch, contextlib.ExitStack() as stack:
        services = {}
        for arm in ab.arms:
            plans[arm.name].out.mkdir(parents=True, exist_ok=True)
            status(f"starting the {arm.name} service")
            services[arm.name] = stack.enter_context(
                launch_service(
                    roles_path=ab.roles_path,
                    db_path=Path(scratch) / f"{arm.name}.db",
                    env=service_env(arm.settings, arm.faults),
                    log_path=plans[arm.name].out / SERVICE_LOG,
                )
            )
            warm_up(services[arm.name].url)
        for index in range(1, max(arm.runs for arm in ab.arms) + 1):
            for arm in ab.arms:
                if index <= arm.runs:
                    service = services[arm.name]
                    one_load_run(
                        plans[arm.name],
                        service.url,
                        service.pid,
                        index,
                        _prefixed(status, arm.name),
                    )
    for arm in ab.arms:
        if arm.measure_memory:
            measure_memory(plans[arm.name], _prefixed(status, arm.name))
    return {name: plan.out for name, plan in plans.items()}


def judge_ab(candidate: Path, reference: Path, slo: Path | None = None) -> TuneOutcome:
    """Judge a candidate arm against a reference arm; memory against the reference's own figures."""
    memory = reference / MEMORY_FILE
    return judge_directory(
        candidate,
        load_policy(slo),
        [reference],
        memory if memory.is_file() else None,
        f"{candidate.name} vs {reference.name}",
    )
