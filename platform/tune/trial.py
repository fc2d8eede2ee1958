"""One trial of the loop: launch the service, warm it up, run N profiled load runs, measure memory.

Each load run directory gets a `service.json` beside the Locust output: the
service's CPU seconds and peak resident memory during that run, which the gate
turns into CPU per output token and the sweep into its costs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from rolescope.errors import EnvironmentProblem
from rolescope.loadtests.targets.base import TargetOptions
from rolescope.procstats import cpu_seconds, rss_bytes
from rolescope.rundir import (
    MEMORY_ERROR_FILE,
    MEMORY_FILE,
    MEMORY_LOG,
    MIRROR_PAIRS_FILE,
    PROFILE_DIR,
    SERVICE_FILE,
    SERVICE_LOG,
    load_dir_name,
)

Status = Callable[[str], None]
WARMUP_REQUESTS = 12


@dataclass
class TrialPlan:
    """What to run; `target` set means an already running service (no launch, profiling only with `pid`)."""

    out: Path
    runs: int = 5
    duration_s: float = 30.0
    speed: float = 10.0
    users: int = 40
    faults: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    target: str | None = None
    pid: int | None = None
    profile: bool = True
    profile_rate: int = 100
    memory: bool = True
    memory_limit: int | None = None
    traffic: Path | None = None
    seed: int = 0
    roles_path: Path | None = None  # role files to serve instead of the bundled ones
    # How to speak to `target`: protocol, model, headers, key, TLS (rolescope's own API by default).
    target_options: TargetOptions = field(default_factory=TargetOptions)
    timeout_s: float = 60.0
    # A role that mirrors: differences beyond this share of pairs are flagged in the mirroring section.
    diff_tolerance: float = 0.05


def service_env(settings: Mapping[str, Any], faults: Mapping[str, float]) -> dict[str, str]:
    """Settings and fault knobs as the `ROLESCOPE_*` variables the service reads."""
    env = {f"ROLESCOPE_{k.upper()}": str(v) for k, v in settings.items() if k != "memory_window"}
    env.update({f"ROLESCOPE_FAULT_{k.upper()}": str(v) for k, v in faults.items()})
    return env


def roles_with_memory_window(window: int, into: Path, roles: Path | None = None) -> Path:
    """Copies of the roles (bundled by default) keeping `window` turns per session.

    The window is each role's memory_policy.max_turns.
    """
    from rolescope.settings import bundled_roles_path

    into.mkdir(parents=True, exist_ok=True)
    folder = roles or bundled_roles_path()
    for source in [folder] if folder.is_file() else sorted(folder.glob("*.yaml")):
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
        data.setdefault("memory_policy", {})["max_turns"] = window
        (into / source.name).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return into


def _warm_up_role(plan: TrialPlan) -> str:
    """The first role the replay will send, so a target serving only the mapped roles is warmed too."""
    from rolescope.loadtests.role_selection import select_roles
    from rolescope.loadtests.traffic_format import read_traffic

    records = select_roles(read_traffic(plan.traffic), plan.target_options.role_map)
    return records[0].role if records else "sherlock"


def warm_up(url: str, requests: int = WARMUP_REQUESTS, plan: TrialPlan | None = None) -> None:
    """Chat and streaming requests side by side: imports, caches and the SQLite file warm before measuring.

    Any other target is spoken to through its protocol's adapter, as the load runs will.
    """
    from concurrent.futures import ThreadPoolExecutor

    from rolescope.loadtests.targets.base import TurnCall
    from rolescope.loadtests.targets.probe import tls_verify
    from rolescope.loadtests.targets.registry import make_adapter

    options = plan.target_options if plan is not None else TargetOptions()
    adapter = make_adapter(options) if options.api != "rolescope" else None
    role = _warm_up_role(plan) if plan is not None and adapter is not None else "sherlock"

    def one(index: int) -> None:
        message, session, stream = f"Warming up, message {index}.", f"warmup-{index % 4}", index % 2 == 1
        with httpx.Client(base_url=url, timeout=30, verify=tls_verify(options)) as client:
            if adapter is None:
                body = {"message": message, "session_id": session, "stream": stream}
                client.post("/v1/chat", json=body).read()
                return
            call = adapter.request(TurnCall(message, role, session, stream))
            client.request(call.method, call.path, content=call.body, headers=dict(call.headers)).read()

    try:
        with ThreadPoolExecutor(max_workers=requests) as pool:
            list(pool.map(one, range(requests)))
    except httpx.HTTPError as exc:
        raise EnvironmentProblem(f"the service at {url} did not answer during warm-up: {exc}") from exc


def _profile_in_background(
    pid: int, duration: int, rate: int, out: Path
) -> tuple[threading.Thread, list[Any]]:
    from rolescope.profiling.recorder import record

    outcome: list[Any] = []

    def work() -> None:
        try:
            outcome.append(record(pid, duration, rate, out, find_worker=True))
        except Exception as exc:  # reported after the run; the load run itself stays valid
            outcome.append(exc)

    thread = threading.Thread(target=work, name="py-spy", daemon=True)
    thread.start()
    return thread, outcome


def one_load_run(plan: TrialPlan, url: str, pid: int | None, index: int, status: Status) -> Path:
    from rolescope.loadtests.runner import LoadOptions, run_load

    out = plan.out / load_dir_name(index)
    if out.exists():
        shutil.rmtree(out)
    profiler = None
    if pid is not None and plan.profile:
        seconds = max(1, int(plan.duration_s) - 1)
        profiler = _profile_in_background(
            pid, seconds, plan.profile_rate, plan.out / PROFILE_DIR / load_dir_name(index)
        )
    cpu_before = cpu_seconds(pid) if pid is not None else None
    peak_rss = [rss_bytes(pid) if pid is not None else 0]
    started = time.monotonic()

    def progress(elapsed: float, samples: int) -> None:
        if pid is not None:
            peak_rss[0] = max(peak_rss[0], rss_bytes(pid))
        status(
            f"load run {index}/{plan.runs}: {min(elapsed, plan.duration_s):.0f}/{plan.duration_s:.0f} s, "
            f"{samples} requests"
        )

    options = LoadOptions(
        host=url,
        out=out,
        traffic=plan.traffic,
        users=plan.users,
        spawn_rate=float(plan.users),
        speed=plan.speed,
        duration_s=plan.duration_s,
        seed=plan.seed,
        timeout_s=plan.timeout_s,
        target=plan.target_options,
    )
    run_load(options, progress=progress)
    service: dict[str, Any] = {"wall_seconds": time.monotonic() - started}
    if pid is not None and cpu_before is not None:
        service.update(pid=pid, cpu_seconds=cpu_seconds(pid) - cpu_before, peak_rss_bytes=peak_rss[0])
    if profiler is not None:
        profiler[0].join(timeout=plan.duration_s + 90)
        failure = next((o for o in profiler[1] if isinstance(o, Exception)), None)
        if failure is not None:
            service["profile_error"] = str(failure)
    (out / SERVICE_FILE).write_text(json.dumps(service, indent=2))
    return out


def measure_memory(plan: TrialPlan, status: Status) -> Path | None:
    """Allocations and bytes per request (memray, in a separate interpreter) → `memory.json`."""
    if not plan.memory:
        return None
    status("measuring allocations and bytes per request (memray)")
    out = plan.out / MEMORY_FILE
    settings: dict[str, Any] = {k: v for k, v in plan.settings.items() if k in ("sqlite_synchronous",)}
    if plan.roles_path is not None:
        settings["roles_path"] = str(plan.roles_path)
    command = [
        sys.executable,
        "-m",
        "rolescope.tune.memory_worker",
        "--out",
        str(out),
        "--faults",
        json.dumps(plan.faults),
        "--settings",
        json.dumps(settings),
    ]
    if plan.memory_limit is not None:
        command += ["--limit", str(plan.memory_limit)]
    if plan.traffic is not None:
        command += ["--traffic", str(plan.traffic)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        # Timing and profile are still worth judging: the missing memory figures become a note.
        message = (result.stderr.strip().splitlines() or ["no output"])[-1].removeprefix("error: ")
        (plan.out / MEMORY_LOG).write_text(result.stdout + result.stderr)
        (plan.out / MEMORY_ERROR_FILE).write_text(message + "\n")
        status(f"memory not measured: {message}")
        return None
    return out


def run_trial(plan: TrialPlan, status: Status) -> list[Path]:
    """Run the plan; returns the load run directories. Launches the service unless `plan.target` is set."""
    plan.out.mkdir(parents=True, exist_ok=True)
    if plan.target is not None:
        status(f"warming up the target at {plan.target} ({plan.target_options.api})")
        warm_up(plan.target, plan=plan)
        loads = [one_load_run(plan, plan.target, plan.pid, i, status) for i in range(1, plan.runs + 1)]
        measure_memory(plan, status)
        return loads
    from rolescope.serving.launcher import launch_service
    from rolescope.tune.mirroring import mirror_counts, record_mirroring

    with tempfile.TemporaryDirectory(prefix="rolescope-tune-") as scratch:
        roles = plan.roles_path
        if "memory_window" in plan.settings:
            roles = roles_with_memory_window(
                int(plan.settings["memory_window"]), Path(scratch) / "roles", plan.roles_path
            )
        status("starting the role service (simulator, SQLite, fresh database)")
        service = launch_service(
            roles_path=roles,
            db_path=Path(scratch) / "tune.db",
            # A role with a `mirror:` section writes its pairs here (nothing is written otherwise).
            env={
                **service_env(plan.settings, plan.faults),
                "ROLESCOPE_MIRROR_PAIRS_PATH": str(plan.out / MIRROR_PAIRS_FILE),
            },
            log_path=plan.out / SERVICE_LOG,
        )
        with service:
            status(f"warming up the service at {service.url}")
            warm_up(service.url)
            mirrored_before, loads_started = mirror_counts(service.url), time.time()
            loads = [one_load_run(plan, service.url, service.pid, i, status) for i in range(1, plan.runs + 1)]
            mirrored_after = mirror_counts(service.url)
        # After the service stopped: it writes the pairs still queued on its way out.
        record_mirroring(
            plan.out, mirrored_before, mirrored_after, loads_started, plan.roles_path, plan.diff_tolerance
        )
    measure_memory(plan, status)
    return loads
