"""How often the gate catches planted regressions, and how often it cries wolf on an unchanged service.

Each trial launches six services side by side — a reference, an unchanged copy
(A/A), and four planted regressions through the simulator's fault knobs — and
interleaves their load runs, then judges every variant against the reference.
Timing is judged across runs, so the reference, the A/A copy and the timing
regressions get eight runs each: with five, a single run disturbed by another
process on the machine breaks the complete separation that five a side need
to stay significant after Holm's correction over six checks. The error
regression needs only enough requests (three runs), the allocation regression
none beyond one (memray measures it separately). Regressions, sized from a calibration run so they are what
they claim to be:

  cpu          +20 % service CPU per output token (cpu_per_token_us)
  allocations  +10 % allocations per request (extra_allocations)
  latency      +50 ms before the first token (added_latency_ms)
  errors       2 % of requests fail (error_rate)

A regression counts as detected when the gate fails *and* names it (the
right check among the failed ones). Targets: ≥ 9/10 detections for each,
≤ 1/10 false failures for A/A.

    python -m rolescope.bench gate_accuracy [--quick]
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import yaml

from rolescope.gate.rundir import load_runs
from rolescope.gate.runstats import run_statistic
from rolescope.rundir import MEMORY_FILE
from rolescope.settings import bundled_roles_path
from rolescope.tune.ab import AbPlan, Arm, judge_ab, run_interleaved

TIMING_RUNS = 8
RUNS = {"cpu": TIMING_RUNS, "latency": TIMING_RUNS, "errors": 3, "allocations": 1}
DURATION_S = 3.0
USERS = 10
SPEED = 100.0
MEMORY_LIMIT = 60
# The check whose failure counts as naming each planted regression.
NAMED_BY = {
    "cpu": ("ab:cpu_per_token_ms",),
    "allocations": ("memory:all.allocations_per_request",),
    "latency": ("ab:ttft_p95",),
    "errors": ("chat-availability", "ab:error_ratio"),
}


def _fast_roles(into: Path) -> Path:
    """The bundled roles streaming at 400 tokens/s: more requests per second of load, same code paths."""
    into.mkdir(parents=True, exist_ok=True)
    for source in bundled_roles_path().glob("*.yaml"):
        data = yaml.safe_load(source.read_text())
        data["inference"]["simulator"]["tokens_per_second"] = 400
        (into / source.name).write_text(yaml.safe_dump(data))
    return into


def _calibrate(root: Path, roles: Path) -> tuple[float, float]:
    """(service CPU ms per output token, allocations per request) of the unchanged service."""
    plan = AbPlan(
        root / "calibration",
        [Arm("reference", runs=3, measure_memory=True)],
        DURATION_S,
        SPEED,
        USERS,
        memory_limit=MEMORY_LIMIT,
        roles_path=roles,
    )
    directory = run_interleaved(plan, lambda message: None)["reference"]
    cpu_ms = sorted(run_statistic("cpu_per_token_ms", load_runs([directory])))[1]
    memory = json.loads((directory / MEMORY_FILE).read_text())
    return cpu_ms, float(memory["kinds"]["all"]["allocations_per_request"])


def _trial(root: Path, roles: Path, faults: dict[str, dict[str, float]]) -> dict[str, list[str]]:
    arms = [Arm("reference", runs=TIMING_RUNS, measure_memory=True), Arm("unchanged", runs=TIMING_RUNS)]
    arms += [
        Arm(name, fault, runs=RUNS[name], measure_memory=name == "allocations")
        for name, fault in faults.items()
    ]
    plan = AbPlan(root, arms, DURATION_S, SPEED, USERS, memory_limit=MEMORY_LIMIT, roles_path=roles)
    directories = run_interleaved(plan, lambda message: None)
    failed: dict[str, list[str]] = {}
    for arm in arms[1:]:
        outcome = judge_ab(directories[arm.name], directories["reference"])
        failed[arm.name] = [check.name for check in outcome.verdict.failed]
    return failed


def run(quick: bool = False) -> dict[str, float]:
    trials = 3 if quick else 10
    with tempfile.TemporaryDirectory(prefix="rolescope-bench-gate-") as scratch:
        root = Path(scratch)
        roles = _fast_roles(root / "roles")
        cpu_ms, allocations = _calibrate(root, roles)
        faults: dict[str, dict[str, float]] = {
            "cpu": {"cpu_per_token_us": round(0.20 * cpu_ms * 1000, 1)},
            "allocations": {"extra_allocations": float(round(0.10 * allocations))},
            "latency": {"added_latency_ms": 50.0},
            "errors": {"error_rate": 0.02},
        }
        print(
            f"calibration: {cpu_ms:.4f} ms CPU per token, {allocations:,.0f} allocations per request; "
            f"planted: {json.dumps(faults)}"
        )
        detected = dict.fromkeys(NAMED_BY, 0)
        false_failures = 0
        started = time.monotonic()
        for trial in range(1, trials + 1):
            failed = _trial(root / f"trial-{trial}", roles, faults)
            false_failures += bool(failed["unchanged"])
            for name, checks in NAMED_BY.items():
                detected[name] += any(check in failed[name] for check in checks)
            print(
                f"trial {trial}/{trials} ({time.monotonic() - started:.0f} s): "
                + "; ".join(f"{name} failed {sorted(checks) or 'nothing'}" for name, checks in failed.items())
                + f" — so far detected {detected}, A/A false failures {false_failures}",
                flush=True,
            )
    figures = {f"{name}_detection_ratio": count / trials for name, count in detected.items()}
    figures["aa_false_failure_ratio"] = false_failures / trials
    figures["trials"] = float(trials)
    print(
        "detection (gate failed and named the planted regression): "
        + ", ".join(f"{name} {detected[name]}/{trials}" for name in NAMED_BY)
        + f"; A/A false failures {false_failures}/{trials}"
    )
    return figures


if __name__ == "__main__":
    run()
