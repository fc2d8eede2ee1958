"""How many connections one service instance holds, and what they cost the streams that are active.

One `rolescope serve` (uvloop, SQLite) runs twice: first with one worker, then
with the default workers (one per CPU this process may use, as uvicorn's and
gunicorn's documentation size them; `ROLESCOPE_BENCH_WORKERS=N` picks another
number). The service runs on every CPU this process may use but the last; this
process is the client, pinned to the last, on one asyncio loop (on a 2-CPU
machine the workers share the first CPU, so the second case shows memory,
failures and how the kernel spreads connections, not more CPU). Each case opens
idle connections up to 1,000, then 5,000, then 10,000 (`--quick`: 1,000 only),
half WebSockets on `/v1/ws` that are connected and silent, half HTTP keep-alive
connections that streamed one SSE turn and now wait for the next, as chat users
do between turns (`connections_client.py`). At each level 100 of them stream
replies for a few seconds (50 WebSocket turns, 50 SSE turns, back to back) and
the figures are taken. The active streams talk to `paced`, a copy of sherlock
whose simulator has TTFT 0 and 40 tokens/s (a model's pace: 100 streams are
~4,000 token events a second, not a flood that would make TTFT a queue); the
turn that opens an SSE connection talks to sherlock made instant (TTFT 0, 100k
tokens/s). The figures, side by side for both cases:

- server-added TTFT p50/p99: message sent to first token event, as the client
  sees it; the simulator adds nothing, so this is the service (and loopback);
- RSS per connection: the resident memory growth over the idle level of the
  whole service (every worker and the supervisor), divided by the connections opened (psutil);
- failures: connections that could not be opened or closed early, turns that failed.

Goals: 10,000 held with 0 failures, TTFT p99 <= 5 ms at 100 active streams,
<= 64 KB RSS per idle connection. Each connection is a file descriptor on both
sides: the command raises its RLIMIT_NOFILE soft limit to the hard limit (the
service and its workers inherit it) and says so when the hard limit is too low
(`ulimit -Hn`, or `LimitNOFILE=` for a systemd unit). On a shared machine the
latencies move with the load; the memory and failure figures do not.

    python -m rolescope.bench connections [--quick]
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

from rolescope.bench.connections_client import ACTIVE, PACED, Pool, percentile, stream_for
from rolescope.bench.telemetry_cost import fast_roles
from rolescope.errors import EnvironmentProblem
from rolescope.procstats import cpu_seconds, rss_bytes

LEVELS = (1_000, 5_000, 10_000)
TTFT_GOAL_MS = 5.0
RSS_GOAL_KB = 64.0


def raise_fd_limit(needed: int) -> int:
    """Raise this process's open-files soft limit to its hard limit; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if target < needed:
        raise EnvironmentProblem(
            f"{needed} connections need {needed} file descriptors, but the hard limit is {hard}; "
            "raise it (`ulimit -Hn`, or LimitNOFILE= in a systemd unit) and run again"
        )
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def default_workers() -> int:
    """One worker per CPU this process may use, or `ROLESCOPE_BENCH_WORKERS`."""
    given = os.environ.get("ROLESCOPE_BENCH_WORKERS")
    if given is None:
        return len(os.sched_getaffinity(0))
    if not given.isdigit() or not 1 <= int(given) <= 64:
        raise EnvironmentProblem(f"ROLESCOPE_BENCH_WORKERS={given!r}: expected a whole number from 1 to 64")
    return int(given)


def cpu_split() -> tuple[str | None, int | None]:
    """(the service's CPUs as a taskset list, the client's CPU): the client gets the last CPU."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None, None
    return ",".join(str(cpu) for cpu in allowed[:-1]), allowed[-1]


def worker_processes(pid: int) -> list[psutil.Process]:
    """The service's worker processes (not multiprocessing's resource tracker)."""
    found = []
    for child in psutil.Process(pid).children():
        try:
            if not any("resource_tracker" in part for part in child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def pin_service(pid: int, cpus: str | None) -> None:
    """Pin the service, its workers and all their threads to `cpus`."""
    if cpus is None:
        return
    allowed = {int(cpu) for cpu in cpus.split(",")}
    for process in [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]:
        for task in Path(f"/proc/{process}/task").glob("*"):
            try:
                os.sched_setaffinity(int(task.name), allowed)
            except OSError:  # a thread or worker that ended meanwhile
                continue


def wait_for_workers(pid: int, workers: int, timeout: float = 90.0) -> None:
    """Until every worker runs and has stopped starting up (its CPU time settles), so the memory
    baseline is not taken while one is still importing."""
    deadline = time.monotonic() + timeout
    previous = -1.0
    while time.monotonic() < deadline:
        used = cpu_seconds(pid)
        if len(worker_processes(pid)) >= workers and used - previous < 0.05:
            return
        previous = used
        time.sleep(0.5)
    raise EnvironmentProblem(f"the service's {workers} workers did not settle within {timeout:.0f} s")


def service_fd_limit(pid: int) -> int:
    """The lowest open-files soft limit among the service's processes (they inherit the bench's)."""
    limits = []
    for process in [psutil.Process(pid), *worker_processes(pid)]:
        try:
            limits.append(int(process.rlimit(psutil.RLIMIT_NOFILE)[0]))
        except psutil.Error:
            continue
    return min(limits, default=-1)


def fds_per_worker(pid: int) -> list[int]:
    counts = []
    for child in worker_processes(pid):
        try:
            counts.append(child.num_fds())
        except psutil.Error:
            continue
    return counts


async def measure(
    url: str, pid: int, levels: tuple[int, ...], seconds: float, workers: int
) -> dict[str, float]:
    host, port = url.removeprefix("http://").split(":")
    pool = Pool(url, host, int(port))
    await pool.grow(2)
    await stream_for(pool, 1.0)  # warm-up: both paths' code and first pages touched before the baseline
    baseline, warm = rss_bytes(pid), pool.size
    figures: dict[str, float] = {}
    try:
        for level in levels:
            started = time.perf_counter()
            await pool.grow(level)
            opened_s = time.perf_counter() - started
            await asyncio.sleep(1)  # let the service settle before reading its memory
            per_connection = (rss_bytes(pid) - baseline) / max(pool.size - warm, 1)
            cpu_before, wall_before = cpu_seconds(pid), time.perf_counter()
            ttfts, failed_turns = await stream_for(pool, seconds)
            # Near 1.0 the service's core is the bottleneck; well below with high TTFT, other work starved it.
            busy = (cpu_seconds(pid) - cpu_before) / (time.perf_counter() - wall_before)
            spread = "" if workers == 1 else f"; file descriptors per worker {fds_per_worker(pid)}"
            ws_closed, sse_closed = pool.closed_early()
            failures = pool.failed_opens + ws_closed + sse_closed + failed_turns
            figures |= {
                f"open_{level}": float(pool.size),
                f"failures_{level}": float(failures),
                f"ttft_p50_ms_{level}": percentile(ttfts, 0.5) * 1e3,
                f"ttft_p99_ms_{level}": percentile(ttfts, 0.99) * 1e3,
                f"rss_kb_per_connection_{level}": per_connection / 1024,
                f"turns_{level}": float(len(ttfts)),
                f"service_cpu_busy_{level}": busy,
            }
            print(
                f"  {level:>6,} wanted: {pool.size:,} open (in {opened_s:.1f} s), {failures} failures "
                f"({pool.failed_opens} opens, {ws_closed} WebSockets and {sse_closed} SSE connections "
                f"closed, {failed_turns} turns); "
                f"TTFT p50 {figures[f'ttft_p50_ms_{level}']:.1f} ms, "
                f"p99 {figures[f'ttft_p99_ms_{level}']:.1f} ms "
                f"over {len(ttfts):,} turns at {ACTIVE} active; "
                f"{figures[f'rss_kb_per_connection_{level}']:.1f} KB RSS per connection; "
                f"service CPU {busy:.2f} of a core while streaming{spread}",
                flush=True,
            )
    finally:
        await pool.close()
    return figures


def paced_role(folder: Path) -> Path:
    role = yaml.safe_load((folder / "sherlock.yaml").read_text())
    role["name"] = PACED
    role["inference"]["simulator"].update({"ttft_ms": 0, "tokens_per_second": 40, "jitter": 0})
    (folder / f"{PACED}.yaml").write_text(yaml.safe_dump(role))
    return folder


def event_loop_runner() -> asyncio.Runner:
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def run_case(
    roles: Path, work: Path, levels: tuple[int, ...], workers: int, cpus: tuple[str | None, int | None]
) -> dict[str, float]:
    """One service with `workers` workers through every level; its figures."""
    from rolescope.serving.launcher import launch_service

    service_cpus, client_cpu = cpus
    seconds = 6.0
    # Idle limits beyond the run's length: opening 10,000 connections on a busy machine takes
    # longer than the 75 s keep-alive default, and a connection the server closes on purpose
    # when idle is not a connection it failed to hold.
    env = {
        "ROLESCOPE_LOG_LEVEL": "warning", "ROLESCOPE_CONCURRENCY_LIMIT": "0",
        "ROLESCOPE_KEEP_ALIVE_S": "1800", "ROLESCOPE_WS_IDLE_TIMEOUT_S": "1800",
        "ROLESCOPE_WORKERS": str(workers),
    }
    with launch_service(
        roles_path=roles, db_path=work / f"s-{workers}.db", env=env, ready_timeout=120
    ) as service:
        if workers > 1:
            wait_for_workers(service.pid, workers)
        pin_service(service.pid, service_cpus)
        if client_cpu is not None:
            os.sched_setaffinity(0, {client_cpu})
        print(
            f"{workers} worker{'s' if workers > 1 else ''} (service pid {service.pid} on CPU "
            f"{service_cpus}, uvloop; client on CPU {client_cpu}; "
            f"RLIMIT_NOFILE {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}, "
            f"service and workers {service_fd_limit(service.pid)}; "
            f"{ACTIVE} active for {seconds:.0f} s a level):",
            flush=True,
        )
        with event_loop_runner() as runner:
            return runner.run(measure(service.url, service.pid, levels, seconds, workers))


def side_by_side(cases: dict[int, dict[str, float]], levels: tuple[int, ...]) -> str:
    rows = [
        ("held", "open_{}", "{:,.0f}"),
        ("failures", "failures_{}", "{:.0f}"),
        ("KB RSS per connection (all workers)", "rss_kb_per_connection_{}", "{:.1f}"),
        ("TTFT p50 ms", "ttft_p50_ms_{}", "{:.1f}"),
        (f"TTFT p99 ms at {ACTIVE} active", "ttft_p99_ms_{}", "{:.1f}"),
        ("service CPU while streaming (cores)", "service_cpu_busy_{}", "{:.2f}"),
    ]
    heads = [f"{level:,} / {workers}w" for level in levels for workers in cases]
    lines = ["  " + " | ".join(["figure", *heads])]
    for label, key, form in rows:
        cells = [form.format(cases[w][key.format(level)]) for level in levels for w in cases]
        lines.append("  " + " | ".join([label, *cells]))
    return "\n".join(lines)


def run(quick: bool = False) -> dict[str, float]:
    """Idle connections held and active streams' TTFT at each level, one worker and the default
    workers; prints them side by side and returns the figures (keys prefixed `w<N>_`)."""
    levels = LEVELS[:1] if quick else LEVELS
    cpus = cpu_split()  # before the client pins itself
    # Both ends hold every connection: the client here, and the service (all workers together).
    raise_fd_limit(levels[-1] + 1_000)
    cases: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="rolescope-bench-") as tmp:
        work = Path(tmp)
        roles = paced_role(fast_roles(work / "roles"))
        for workers in dict.fromkeys((1, default_workers())):
            cases[workers] = run_case(roles, work, levels, workers, cpus)
    print(f"connections side by side ({', '.join(f'{w}w = {w} worker(s)' for w in cases)}):")
    print(side_by_side(cases, levels))
    for workers, figures in cases.items():
        worst = max(figures[f"ttft_p99_ms_{level}"] for level in levels)
        rss = max(figures[f"rss_kb_per_connection_{level}"] for level in levels)
        failures = sum(figures[f"failures_{level}"] for level in levels)
        print(
            f"  goals, {workers} worker(s): {levels[-1]:,} held with 0 failures ({failures:.0f}), "
            f"TTFT p99 <= {TTFT_GOAL_MS} ms ({worst:.1f}), <= {RSS_GOAL_KB:.0f} KB per connection ({rss:.1f})"
        )
    print("  the machine may be shared: latencies move with its load; memory and failures do not")
    return {f"w{w}_{key}": value for w, figures in cases.items() for key, value in figures.items()}


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
