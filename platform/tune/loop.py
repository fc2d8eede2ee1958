"""`rolescope tune`: one trial judged against the SLO spec, the baseline and (optionally) a reference."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolescope.alerts.spec import load_slo_spec
from rolescope.errors import ConfigError
from rolescope.gate.collect import Collected, collect, default_baseline_path
from rolescope.gate.coverage import write_measurements
from rolescope.gate.model import MEMORY, PROFILE, SERVER, GatePolicy, Measurement, Verdict
from rolescope.gate.outputs import judge_versions, write_all
from rolescope.gate.policy import load_policy
from rolescope.gate.version_split import VersionChoice
from rolescope.loadtests.targets.base import TargetOptions
from rolescope.tune.trial import Status, TrialPlan, run_trial

QUICK = {"runs": 3, "duration_s": 12.0}
FULL = {"runs": 5, "duration_s": 30.0}
_SUBSET = re.compile(r"^first (\d+) of \d+$")


@dataclass
class TuneOptions:
    out: Path | None = None
    quick: bool = False
    runs: int | None = None
    duration_s: float | None = None
    speed: float = 10.0
    users: int = 40
    faults: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    target: str | None = None
    pid: int | None = None
    reference: list[Path] = field(default_factory=list)
    slo: Path | None = None
    baseline: Path | None = None
    profile: bool = True
    memory: bool = True
    traffic: Path | None = None
    roles: Path | None = None
    target_options: TargetOptions = field(default_factory=TargetOptions)
    timeout_s: float = 60.0
    # One-run A/B: judge one role version's requests against another's (a release policy's split).
    versions: VersionChoice | None = None

    def output_dir(self) -> Path:
        return self.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S")


@dataclass
class TuneOutcome:
    out: Path
    verdict: Verdict
    policy: GatePolicy
    collected: Collected
    files: dict[str, Path]


def memory_limit_of(baseline: Path) -> int | None:
    """Replay the same subset of traffic the committed baseline measured, or the figures are incomparable."""
    if not baseline.is_file():
        return None
    from rolescope.memory.model import load_baseline

    match = _SUBSET.match(load_baseline(baseline).environment.traffic_subset)
    return int(match.group(1)) if match else None


def plan_for(options: TuneOptions, out: Path) -> TrialPlan:
    preset = QUICK if options.quick else FULL
    runs = options.runs or int(preset["runs"])
    duration = options.duration_s or float(preset["duration_s"])
    if runs < 1 or duration < 2:
        raise ConfigError(f"--runs must be ≥ 1 and --duration ≥ 2 s (got {runs} runs of {duration} s)")
    baseline = options.baseline or default_baseline_path()
    return TrialPlan(
        out=out,
        runs=runs,
        duration_s=duration,
        speed=options.speed,
        users=options.users,
        faults=dict(options.faults),
        settings=dict(options.settings),
        target=options.target,
        pid=options.pid,
        profile=options.profile and (options.target is None or options.pid is not None),
        # Without a baseline there is nothing to hold the figures to: skip the minute memray takes.
        memory=options.memory and options.target is None and baseline.is_file(),
        memory_limit=memory_limit_of(baseline),
        traffic=options.traffic,
        roles_path=options.roles,
        target_options=options.target_options,
        timeout_s=options.timeout_s,
    )


_NO_PID = "the target was given without --pid, so its process is unknown"


def planned_measurements(options: TuneOptions, plan: TrialPlan) -> list[Measurement]:
    """What this trial sets out to measure and, for what it will not, why: the report repeats it."""
    launched = options.target is None
    if plan.profile:
        profile = Measurement(PROFILE, True, "py-spy attached to the service during every load run")
    elif not options.profile:
        profile = Measurement(PROFILE, False, "turned off with --no-profile")
    else:
        profile = Measurement(PROFILE, False, f"{_NO_PID}: py-spy has nothing to attach to")
    if plan.memory:
        memory = Measurement(MEMORY, True, "memray, replaying the traffic in a separate interpreter")
    elif not options.memory:
        memory = Measurement(MEMORY, False, "turned off with --no-memory")
    elif not launched:
        memory = Measurement(
            MEMORY,
            False,
            "memray measures rolescope's own service replaying the traffic in its own interpreter; "
            "a running target is not instrumented"
            + (" (its peak RSS is recorded instead)" if options.pid is not None else ""),
        )
    else:
        memory = Measurement(MEMORY, False, "no committed memory baseline to hold the figures to")
    if launched or options.pid is not None:
        server = Measurement(SERVER, True, "CPU seconds and peak RSS of the service process")
    else:
        server = Measurement(SERVER, False, f"{_NO_PID}: no CPU per output token, no peak RSS")
    return [profile, memory, server]


def judge_directory(
    out: Path,
    policy: GatePolicy,
    reference: list[Path],
    baseline: Path | None,
    title: str,
    versions: VersionChoice | None = None,
) -> TuneOutcome:
    collected = collect([out], reference or None, baseline)
    verdict = judge_versions(policy, collected, versions)
    files = write_all(verdict, policy, collected, out, title=title)
    return TuneOutcome(out, verdict, policy, collected, files)


def tune(options: TuneOptions, status: Status) -> TuneOutcome:
    """Run one trial and write verdict.json, junit.xml, summary.md and report.html into its directory."""
    policy = load_policy(options.slo)  # a broken spec fails before minutes of load, not after
    out = options.output_dir()
    plan = plan_for(options, out)
    if options.target is not None and options.pid is None:
        status("tuning a running service: no profile without --pid, no memory measurement")
    out.mkdir(parents=True, exist_ok=True)
    plan.diff_tolerance = load_slo_spec(options.slo).gate.diff_tolerance
    write_measurements(out, planned_measurements(options, plan))
    run_trial(plan, status)
    status("judging the runs against the SLO spec and the baseline")
    return judge_directory(
        out, policy, options.reference, options.baseline, "rolescope tune", options.versions
    )
