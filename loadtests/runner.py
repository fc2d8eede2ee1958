"""Run Locust headless against a role service and write the run directory.

Locust runs in child processes (`python -m locust`), never in the caller:
gevent monkey-patches the standard library on import, which must not happen in
the `rolescope` CLI, the tuning loop or a test process. One process runs
`--processes 1`; more start a Locust master and that many workers on loopback.
When they finish, the samples the master collected become `slis.json`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Literal

from rolescope.errors import ConfigError, EnvironmentProblem
from rolescope.gate.policy import load_policy
from rolescope.loadtests.load_config import LoadConfig, UserKind
from rolescope.loadtests.slis import compute_slis
from rolescope.loadtests.stages import ShapeName
from rolescope.loadtests.targets.base import TargetOptions
from rolescope.rundir import (
    ENVIRONMENT_FILE,
    LOCUST_CSV_PREFIX,
    LOCUST_LOG,
    LOCUST_REPORT_FILE,
    LOCUST_STATS_FILE,
    LOCUST_STATS_PREFIX,
    SAMPLES_FILE,
    SETTINGS_FILE,
    SLIS_FILE,
    read_samples,
)

Progress = Callable[[float, int], None]  # (elapsed seconds, samples so far)
# Seconds Locust may take to start, stop its users and write its reports, on top of the run time.
STARTUP_GRACE_S = 30.0
# Requests in flight when the run ends may finish (and be recorded) within this many seconds.
STOP_TIMEOUT_S = 10.0
# Idle users cost little; too few would let a slow service lower the offered rate.
OPEN_MODEL_COVER_S = 10.0


@dataclass
class LoadOptions:
    host: str
    out: Path
    traffic: Path | None = None
    users: int = 10
    spawn_rate: float = 10.0
    rate: float | None = None
    arrival: Literal["poisson", "constant"] = "poisson"
    speed: float = 1.0
    sessions_share: float = 1.0
    shape: ShapeName | None = None
    duration_s: float = 60.0
    processes: int = 1
    metrics_port: int | None = None
    user: UserKind = "replay"
    seed: int = 0
    timeout_s: float = 60.0
    cpus: str | None = None  # a CPU list such as "0" or "0-1": pin every Locust process there
    # Open model: the user pool covers answers of up to this many seconds at `rate`. A pool
    # too small delays sends (counted: latency runs from the intended time); one too large
    # costs a connection per user, each used only once or twice.
    open_pool_cover_s: float = OPEN_MODEL_COVER_S
    extra_env: dict[str, str] = field(default_factory=dict)
    target: TargetOptions = field(default_factory=TargetOptions)  # protocol, model, headers, TLS, roles

    def effective_users(self) -> int:
        """Users to start; in the open model enough that the arrival rate, not the pool, sets the pace."""
        if self.rate is None:
            return self.users
        # Little's law: enough users for answers of up to `open_pool_cover_s` each.
        return max(self.users, math.ceil(self.rate * self.open_pool_cover_s) + 4 * self.processes)


def locustfile_path() -> Path:
    return Path(str(resources.files("rolescope.loadtests").joinpath("locustfile.py")))


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_config_for(options: LoadOptions, samples: Path) -> LoadConfig:
    return LoadConfig(
        traffic=options.traffic,
        user=options.user,
        speed=options.speed,
        sessions_share=options.sessions_share,
        rate=options.rate,
        arrival=options.arrival,
        processes=options.processes,
        seed=options.seed,
        shape=options.shape,
        users=options.effective_users(),
        spawn_rate=options.spawn_rate,
        duration_s=options.duration_s,
        samples=samples,
        metrics_port=options.metrics_port,
        run_tag=f"r{int(time.time()) % 10**8}",
        timeout_s=options.timeout_s,
        target=options.target,
    )


def environment_info(options: LoadOptions) -> dict[str, object]:
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "locust": version("locust"),  # not imported: it would monkey-patch this process
        "hostname": socket.gethostname(),
        "target": options.host,
        "started_unix": time.time(),
    }


def pinned(command: list[str], cpus: str | None) -> list[str]:
    """`command` run on the CPUs in `cpus` (taskset's list syntax); unchanged when `cpus` is None.

    On a machine shared by the load generator and the service, pinning each to its own cores
    keeps one from stealing the other's CPU time, which would show up as the service's latency.
    """
    if cpus is None:
        return command
    taskset = shutil.which("taskset")
    if taskset is None:
        raise EnvironmentProblem("pinning to CPUs needs `taskset` (Debian package util-linux)")
    return [taskset, "--cpu-list", cpus, *command]


def check_cpu_list(cpus: str) -> str:
    """A taskset CPU list ("0", "0,2", "1-3") naming only CPUs this process may use."""
    allowed = os.sched_getaffinity(0)
    chosen: set[int] = set()
    for part in cpus.split(","):
        low, _, high = part.strip().partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ConfigError(f"--cpus {cpus!r} is not a CPU list; expected e.g. 0, 0,2 or 1-3")
        chosen.update(range(int(low), int(high or low) + 1))
    unknown = sorted(chosen - allowed)
    if not chosen or unknown:
        raise ConfigError(
            f"--cpus {cpus!r} names CPUs this machine does not offer ({unknown}); "
            f"available: {','.join(map(str, sorted(allowed)))}"
        )
    return cpus


def _locust_commands(options: LoadOptions, out: Path) -> list[list[str]]:
    locust = [sys.executable, "-m", "locust", "-f", str(locustfile_path()), "-L", "WARNING"]
    base = pinned(locust, options.cpus)
    users = options.effective_users()
    run = [
        "--headless",
        "-H",
        options.host,
        "-t",
        f"{max(1, round(options.duration_s))}s",
        "--csv",
        str(out / LOCUST_CSV_PREFIX),
        "--html",
        str(out / LOCUST_REPORT_FILE),
        "--json-file",
        str(out / LOCUST_STATS_PREFIX),
        "--only-summary",
        "--stop-timeout",
        f"{min(options.timeout_s, STOP_TIMEOUT_S):g}",
        "--exit-code-on-error",
        "0",
    ]
    if options.shape is None:
        # In the open model the pool only has to exist; start it at once so arrivals are not starved.
        spawn_rate = options.spawn_rate if options.rate is None else max(options.spawn_rate, float(users))
        run += ["-u", str(users), "-r", str(spawn_rate)]
    if options.processes <= 1:
        return [base + run]
    port = free_port()
    master = (
        base
        + run
        + [
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            str(options.processes),
            "--expect-workers-max-wait",
            "30",
        ]
    )
    worker = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    return [master] + [list(worker) for _ in range(options.processes)]


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(1 for _ in handle)
    except OSError:
        return 0


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_load(options: LoadOptions, progress: Progress | None = None) -> Path:
    """Run one load test; returns the run directory holding settings, Locust reports, samples and SLIs."""
    if options.processes < 1:
        raise ConfigError(f"--processes must be at least 1, got {options.processes}")
    if options.cpus is not None:
        check_cpu_list(options.cpus)
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    samples = out / SAMPLES_FILE
    samples.unlink(missing_ok=True)
    config = load_config_for(options, samples)
    # Validate the traffic file here, so a malformed file is a clear error rather than a Locust crash.
    from rolescope.loadtests.role_selection import select_roles
    from rolescope.loadtests.traffic_format import read_traffic

    if not select_roles(read_traffic(options.traffic), options.target.role_map):
        raise ConfigError(f"--roles {options.target.role_map} leaves none of the traffic to send")
    settings = {
        "options": {**asdict(options), "out": str(out), "target": options.target.shown()},
        "load_config": {**config.model_dump(mode="json"), "target": options.target.shown()},
    }
    settings["options"]["users_started"] = options.effective_users()
    (out / SETTINGS_FILE).write_text(json.dumps(settings, indent=2, default=str))
    (out / ENVIRONMENT_FILE).write_text(json.dumps(environment_info(options), indent=2))

    env = {**os.environ, **config.to_env(), **options.extra_env}
    log_path = out / LOCUST_LOG
    processes: list[subprocess.Popen[bytes]] = []
    started = time.monotonic()
    with log_path.open("wb") as log:
        try:
            for command in _locust_commands(options, out):
                processes.append(_spawn(command, env, log))
            _wait(processes, options.duration_s, samples, started, progress)
        finally:
            _stop(processes)
    master = processes[0]
    if master.returncode not in (0, None) or not (out / LOCUST_STATS_FILE).exists():
        tail = log_path.read_text(errors="replace")[-1500:]
        raise EnvironmentProblem(f"Locust exited with code {master.returncode}; see {log_path}:\n{tail}")
    write_slis(out)
    return out


def _spawn(command: list[str], env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(Path.cwd()))
    except OSError as exc:
        raise EnvironmentProblem(f"cannot start Locust ({command[0]}): {exc.strerror}") from exc


def _wait(
    processes: list[subprocess.Popen[bytes]],
    duration_s: float,
    samples: Path,
    started: float,
    progress: Progress | None,
) -> None:
    deadline = started + duration_s + STARTUP_GRACE_S
    master = processes[0]
    while master.poll() is None:
        if time.monotonic() > deadline:
            raise EnvironmentProblem(f"Locust did not finish within {duration_s + STARTUP_GRACE_S:.0f} s")
        if progress is not None:
            progress(time.monotonic() - started, _count_lines(samples))
        time.sleep(0.25)
    # Workers quit when the master tells them to; give them a moment before _stop signals them.
    for worker in processes[1:]:
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(timeout=10)


def write_slis(out: Path, duration_s: float | None = None) -> dict[str, object]:
    samples_path = out / SAMPLES_FILE
    samples = read_samples(samples_path) if samples_path.exists() else []
    policy = load_policy()
    slis = compute_slis(samples, policy.latency_objectives, duration_s)
    slis["thresholds_source"] = policy.source
    (out / SLIS_FILE).write_text(json.dumps(slis, indent=2))
    return slis
