"""What an exchange costs beyond FastAPI: the service against a bare endpoint, pinned to one core.

The role service (default telemetry, SQLite, the sherlock role made instant:
simulator TTFT 0, 100k tokens/s) and a bare FastAPI app answering the same JSON
(`rolescope.bench.bare_app`, same uvicorn settings) each run pinned to the first
CPU this process may use; wrk runs pinned to the second. Round after round, in
an order that changes every round, wrk drives:

- `bare`: the bare endpoint, `POST /v1/chat`;
- `chat`: the service, `POST /v1/chat` (JSON answer, a new session each time);
- `sse`: the service, `POST /v1/chat` with `"stream": true` (one `token` event per token).

Figures: `chat / bare` throughput (median of the same round's pairs; goal >= 0.5),
SSE token events per second on the service's core (goal >= 30,000), and CPU µs per
request from psutil for each. On a shared machine the absolute rates move with
the load; the ratio and the CPU per request (1 / CPU per request is what one core
would serve) are the figures to read.

Set `ROLESCOPE_BENCH_REFERENCE` to another checkout's Python (e.g.
`/tmp/r-old/.venv/bin/python`) to run that version too, as `chat_ref` / `sse_ref`,
interleaved in the same rounds: before and after a change, side by side.

    python -m rolescope.bench service_overhead [--quick]
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from rolescope.bench.telemetry_cost import fast_roles, round_order
from rolescope.errors import EnvironmentProblem
from rolescope.procstats import process_cpu_seconds

MESSAGE = "Who stole the pearl, and why did the dog not bark?"
_SCRIPT = """wrk.method = "POST"
wrk.body = '{{"message": "{message}"{extra}}}'
wrk.headers["Content-Type"] = "application/json"
"""
_RPS = re.compile(r"Requests/sec:\s+([0-9.]+)")
_REQUESTS = re.compile(r"(\d+) requests in ")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_ERRORS = re.compile(r"Socket errors: .*")
CHAT_GOAL = 0.5
SSE_GOAL = 30_000


def cpu_pair() -> tuple[str | None, str | None]:
    """(service CPU, load CPU): the first two CPUs this process may use; no pinning on one CPU."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None, None
    return str(allowed[0]), str(allowed[1])


def pin_threads(pid: int, cpu: str | None) -> None:
    """Pin every thread of `pid` (threads started later inherit it) to `cpu`."""
    if cpu is None:
        return
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(task.name), {int(cpu)})


def on_cpu(command: list[str], cpu: str | None) -> list[str]:
    taskset = shutil.which("taskset")
    if cpu is None or taskset is None:
        return command
    return [taskset, "--cpu-list", cpu, *command]


@contextmanager
def bare_app(cpu: str | None) -> Iterator[tuple[str, int]]:
    """(url, pid) of the bare FastAPI app, pinned to `cpu`, until the block ends."""
    from rolescope.loadtests.runner import free_port

    port = free_port()
    process = subprocess.Popen(
        on_cpu([sys.executable, "-m", "rolescope.bench.bare_app", str(port)], cpu),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(f"{url}/v1/chat", json={"message": MESSAGE}, timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise EnvironmentProblem("the bare FastAPI app did not start") from None
                time.sleep(0.05)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


def wrk(url: str, script: Path, seconds: int, cpu: str | None, connections: int = 16) -> tuple[float, int]:
    """(requests per second, requests completed) of one wrk run on `cpu`; failures are an error."""
    binary = shutil.which("wrk")
    if binary is None:
        raise EnvironmentProblem("wrk is not installed: run `make system-deps` (Debian package wrk)")
    command = [binary, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script)]
    done = subprocess.run(
        on_cpu([*command, f"{url}/v1/chat"], cpu),
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    )
    failed = _NON_2XX.search(done.stdout) or _ERRORS.search(done.stdout)
    if failed:
        raise EnvironmentProblem(f"requests failed during the benchmark ({failed.group(0)}):\n{done.stdout}")
    found, count = _RPS.search(done.stdout), _REQUESTS.search(done.stdout)
    if found is None or count is None:
        raise EnvironmentProblem(f"could not read wrk's output:\n{done.stdout}")
    return float(found.group(1)), int(count.group(1))


def tokens_per_stream(url: str) -> int:
    reply = httpx.post(f"{url}/v1/chat", json={"message": MESSAGE, "stream": True}, timeout=10)
    reply.raise_for_status()
    return reply.text.count("event: token")


def paired(results: dict[str, list[float]], name: str, against: str) -> float:
    return statistics.median(a / b for a, b in zip(results[name], results[against], strict=True))


def run(quick: bool = False) -> dict[str, float]:
    """Chat vs bare FastAPI and SSE token events per core; prints and returns the figures."""
    from rolescope.serving.launcher import launch_service

    seconds, rounds = (2, 3) if quick else (4, 5)
    service_cpu, load_cpu = cpu_pair()
    reference = os.environ.get("ROLESCOPE_BENCH_REFERENCE")
    with tempfile.TemporaryDirectory(prefix="rolescope-bench-") as tmp, ExitStack() as running:
        work = Path(tmp)
        roles = fast_roles(work / "roles")
        scripts = {"json": work / "json.lua", "sse": work / "sse.lua"}
        scripts["json"].write_text(_SCRIPT.format(message=MESSAGE, extra=""))
        scripts["sse"].write_text(_SCRIPT.format(message=MESSAGE, extra=', "stream": true'))
        env = {"ROLESCOPE_LOG_LEVEL": "warning", "ROLESCOPE_CONCURRENCY_LIMIT": "0"}
        targets: dict[str, tuple[str, int, Path]] = {}  # name -> (url, pid, script)
        bare_url, bare_pid = running.enter_context(bare_app(service_cpu))
        targets["bare"] = (bare_url, bare_pid, scripts["json"])
        builds = {"": None} | ({"_ref": reference} if reference else {})
        for suffix, python in builds.items():
            service = running.enter_context(
                launch_service(roles_path=roles, db_path=work / f"s{suffix}.db", env=env, python=python)
            )
            pin_threads(service.pid, service_cpu)
            targets[f"chat{suffix}"] = (service.url, service.pid, scripts["json"])
            targets[f"sse{suffix}"] = (service.url, service.pid, scripts["sse"])
        tokens = tokens_per_stream(targets["sse"][0])
        for url, _, script in targets.values():
            wrk(url, script, 1, load_cpu)  # warm-up: imports, SQLite pages, first spans
        rps: dict[str, list[float]] = {name: [] for name in targets}
        cpu: dict[str, list[float]] = {name: [] for name in targets}
        for index in range(rounds):
            for name in round_order(list(targets), index):
                url, pid, script = targets[name]
                before = process_cpu_seconds(pid)
                rate, requests = wrk(url, script, seconds, load_cpu)
                rps[name].append(rate)
                cpu[name].append((process_cpu_seconds(pid) - before) / max(requests, 1))
    figures: dict[str, float] = {}
    print(
        f"service overhead (wrk on CPU {load_cpu}, services on CPU {service_cpu}, "
        f"{rounds} interleaved rounds x {seconds} s, {tokens} tokens per streamed reply):"
    )
    for name in targets:
        median_cpu = statistics.median(cpu[name])
        figures[f"{name}_rps"] = statistics.median(rps[name])
        figures[f"{name}_cpu_us_per_request"] = median_cpu * 1e6
        print(
            f"  {name:<8} {figures[f'{name}_rps']:7.0f} req/s "
            f"(rounds {min(rps[name]):.0f}-{max(rps[name]):.0f}), "
            f"{median_cpu * 1e6:6.0f} µs CPU/request"
        )
    for suffix in builds:
        chat, sse = f"chat{suffix}", f"sse{suffix}"
        figures[f"{chat}_vs_bare_ratio"] = paired(rps, chat, "bare")
        figures[f"{chat}_vs_bare_cpu_ratio"] = paired(cpu, "bare", chat)
        figures[f"{sse}_tokens_per_s"] = figures[f"{sse}_rps"] * tokens
        figures[f"{sse}_tokens_per_cpu_s"] = tokens / statistics.median(cpu[sse])
        label = "reference" if suffix else "this build"
        print(
            f"  {label}: chat / bare = {figures[f'{chat}_vs_bare_ratio']:.3f} throughput, "
            f"{figures[f'{chat}_vs_bare_cpu_ratio']:.3f} by CPU per request (goal >= {CHAT_GOAL}); "
            f"SSE {figures[f'{sse}_tokens_per_s']:,.0f} token events/s, "
            f"{figures[f'{sse}_tokens_per_cpu_s']:,.0f} per CPU second (goal >= {SSE_GOAL:,})"
        )
    if reference:
        figures["chat_vs_ref_ratio"] = paired(rps, "chat", "chat_ref")
        figures["sse_vs_ref_ratio"] = paired(rps, "sse", "sse_ref")
        print(
            f"  this build / reference: chat {figures['chat_vs_ref_ratio']:.3f}, "
            f"SSE {figures['sse_vs_ref_ratio']:.3f} (throughput, same rounds)"
        )
    print("  the machine may be shared: read the ratios and CPU per request, not absolute rates")
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
