"""Running `py-spy record` against a process or a command, and finding the uvicorn worker to watch.

py-spy reads another process's memory through ptrace, so it needs to be root,
the target's parent, or hold CAP_SYS_PTRACE (on Kubernetes: the opt-in
profiling values of the chart). Its failures are translated into one sentence
saying which of those is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rolescope.errors import ConfigError, EnvironmentProblem
from rolescope.procstats import children_of, is_python, process_cpu_seconds

CAP_SYS_PTRACE = 19
PERMISSION_HINTS = ("permission denied", "operation not permitted", "eperm")


def py_spy_binary(explicit: str | None = None) -> str:
    found = shutil.which(explicit or "py-spy")
    if found is None:
        raise EnvironmentProblem(
            f"py-spy was not found on PATH ({explicit or 'py-spy'}): install it with `pip install py-spy`."
        )
    return found


def has_ptrace_capability(status_text: str) -> bool:
    """Whether a /proc/<pid>/status text shows CAP_SYS_PTRACE in the effective set.

    psutil reports no capabilities, so this one figure is still read from /proc.
    """
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_SYS_PTRACE & 1)
    return False


def explain_failure(stderr: str, target: str) -> str:
    """One sentence for a failed py-spy run: the permission story, or py-spy's own first line."""
    lowered = stderr.lower()
    if any(hint in lowered for hint in PERMISSION_HINTS):
        try:
            capable = has_ptrace_capability(Path("/proc/self/status").read_text())
        except OSError:
            capable = False
        missing = "" if capable else " and this process lacks CAP_SYS_PTRACE"
        return (
            f"py-spy may not read {target}: ptrace was refused (not root{missing}). Run as root, "
            "or as the target's user with kernel.yama.ptrace_scope=0, or start the command under "
            "`rolescope profile -- …`; in a container add the SYS_PTRACE capability "
            "(the chart's profiling values file does this)."
        )
    if "process is running" in lowered or "no such process" in lowered or "no such file" in lowered:
        return f"py-spy could not find {target}: check that the process is running."
    first = next((line for line in stderr.splitlines() if line.strip() and "py-spy>" not in line), "")
    return f"py-spy failed on {target}: {first.strip() or 'no output'}"


def record_raw(
    out: Path,
    *,
    pid: int | None = None,
    command: Sequence[str] | None = None,
    duration: int,
    rate: int = 100,
    subprocesses: bool = False,
    nonblocking: bool = False,
    py_spy: str | None = None,
) -> None:
    """One `py-spy record --format raw --function` run writing folded stacks to `out`."""
    if (pid is None) == (command is None):
        raise ConfigError("profile needs exactly one target: --pid PID or -- COMMAND…")
    if duration < 1 or rate < 1:
        raise ConfigError(f"duration ({duration} s) and rate ({rate} Hz) must be whole numbers ≥ 1")
    args = [
        py_spy_binary(py_spy), "record", "--format", "raw", "--function",
        "--rate", str(rate), "--duration", str(duration), "--output", str(out),
    ]
    if subprocesses:
        args.append("--subprocesses")
    if nonblocking:
        args.append("--nonblocking")
    if pid is not None:
        args += ["--pid", str(pid)]
        target = f"process {pid}"
    else:
        args += ["--", *(command or [])]
        target = f"command {' '.join(command or [])!r}"
    # Headroom beyond the duration for attaching and writing; a stuck py-spy must not hang a run.
    result = subprocess.run(args, capture_output=True, text=True, timeout=duration + 60, check=False)
    if result.returncode != 0 or not out.exists():
        raise EnvironmentProblem(explain_failure(result.stderr + result.stdout, target))


def find_serving_worker(
    pid: int, probe_seconds: float = 0.5, sleep: Callable[[float], None] = time.sleep
) -> int:
    """The process under `pid` (itself or a uvicorn/gunicorn worker) that burnt most CPU while probed.

    A uvicorn started with --workers N (or --reload) serves requests in child
    processes; the parent only supervises. Under load the worker that serves
    requests is the one whose CPU time moves.
    """
    candidates = [p for p in [pid, *children_of(pid)] if is_python(p)]
    if len(candidates) <= 1:
        return pid
    before = {p: process_cpu_seconds(p) for p in candidates}
    sleep(probe_seconds)
    moved = {p: process_cpu_seconds(p) - before[p] for p in candidates}
    return max(candidates, key=lambda p: (moved[p], process_cpu_seconds(p), -p))
