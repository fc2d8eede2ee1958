"""What py-spy costs the service: throughput while py-spy samples it at 100 Hz, blocking and non-blocking.

Two identical role services (sherlock made near-instant, so each is CPU-bound
and any pause shows) take `POST /v1/chat` from two wrk processes at the same
time; py-spy samples one of them. Both feel the same machine at the same
moment, so the ratio profiled / unprofiled of one window cancels the noise of a
shared machine. Rounds alternate which service is profiled (cancelling any
difference between the two), and a round with neither profiled gives the noise
floor. Figures are medians over rounds. Target: each ratio ≥ 0.95 (py-spy
costs at most 5 %).

    python -m rolescope.bench.profiler_overhead [--quick]
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rolescope.errors import EnvironmentProblem

RATE_HZ = 100
CONNECTIONS = 8
_POST_SCRIPT = """wrk.method = "POST"
wrk.body = '{"message": "Who stole the pearl, and why did the dog not bark?", "role": "sherlock"}'
wrk.headers["Content-Type"] = "application/json"
"""
_RPS = re.compile(r"Requests/sec:\s+([0-9.]+)")


def _wrk(url: str, seconds: int, script: Path) -> float:
    binary = shutil.which("wrk")
    if binary is None:
        raise EnvironmentProblem("wrk is not installed: run `make system-deps` (Debian package wrk)")
    result = subprocess.run(
        [binary, "-t", "1", "-c", str(CONNECTIONS), "-d", f"{seconds}s", "-s", str(script), f"{url}/v1/chat"],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    )
    match = _RPS.search(result.stdout)
    if match is None:
        raise EnvironmentProblem(f"wrk printed no throughput: {result.stdout[-500:]}")
    return float(match.group(1))


def _side_by_side(urls: list[str], seconds: int, script: Path) -> list[float]:
    """Both services loaded in the same window; their throughputs in `urls` order."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(urls)) as pool:
        return list(pool.map(lambda url: _wrk(url, seconds, script), urls))


def _round(urls: list[str], pids: list[int], profiled: int | None, nonblocking: bool, seconds: int,
           script: Path, out: Path) -> float:
    """Throughput of service `profiled` (or of the first, when none is) over the other's."""
    from rolescope.profiling.pyspy import record_raw

    target = 0 if profiled is None else profiled
    failure: list[BaseException] = []

    def profile() -> None:
        try:
            record_raw(out, pid=pids[target], duration=seconds + 2, rate=RATE_HZ, nonblocking=nonblocking)
        except BaseException as exc:  # surfaced below: a benchmark must not report an unprofiled run
            failure.append(exc)

    thread = threading.Thread(target=profile)
    if profiled is not None:
        thread.start()
        time.sleep(1.0)  # py-spy attaches before wrk starts, so the whole window is sampled
    rps = _side_by_side(urls, seconds, script)
    if profiled is not None:
        thread.join(timeout=seconds + 60)
    if failure:
        raise failure[0]
    return rps[target] / rps[1 - target]


def run(quick: bool = False) -> dict[str, float]:
    from contextlib import ExitStack

    from rolescope.memory.replay import fast_roles
    from rolescope.serving.launcher import launch_service
    from rolescope.settings import Settings

    rounds, seconds = (2, 3) if quick else (6, 4)
    ratios: dict[str, list[float]] = {"none": [], "blocking": [], "nonblocking": []}
    with tempfile.TemporaryDirectory(prefix="rolescope-bench-pyspy-") as scratch, ExitStack() as stack:
        root = Path(scratch)
        script = root / "post.lua"
        script.write_text(_POST_SCRIPT)
        roles = fast_roles(Settings().roles_path, root / "roles")
        services = [
            stack.enter_context(launch_service(roles_path=roles, db_path=root / f"{name}.db",
                                               log_path=root / f"{name}.log"))
            for name in ("a", "b")
        ]
        urls, pids = [s.url for s in services], [s.pid for s in services]
        _side_by_side(urls, 2, script)  # warm-up
        for index in range(rounds):
            profiled = index % 2
            figures = {
                "none": _round(urls, pids, None, False, seconds, script, root / "none.txt"),
                "blocking": _round(urls, pids, profiled, False, seconds, script, root / f"b{index}.txt"),
                "nonblocking": _round(urls, pids, profiled, True, seconds, script, root / f"n{index}.txt"),
            }
            for mode, ratio in figures.items():
                ratios[mode].append(ratio)
            done = ", ".join(f"{mode} {ratio:.3f}" for mode, ratio in figures.items())
            print(f"round {index + 1}/{rounds} (service {'ab'[profiled]} profiled): {done}")
    figures = {
        "pyspy_blocking_throughput_ratio": statistics.median(ratios["blocking"]),
        "pyspy_nonblocking_throughput_ratio": statistics.median(ratios["nonblocking"]),
        "unprofiled_pair_ratio": statistics.median(ratios["none"]),
    }
    for name, value in figures.items():
        print(f"{name}: {value:.3f}" + ("" if name.startswith("unprofiled") else " (target ≥ 0.95)"))
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
