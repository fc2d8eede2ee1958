"""What shadow mirroring costs the primary: TTFT p99 and throughput with every request mirrored.

Four role services run side by side on loopback, one worker each, sherlock
with a quick simulator (20 ms to the first token):

- `off`: no `mirror:` section;
- `spare`: `share: 1.0` to another rolescope service with room to spare (its own process);
- `slow`: `share: 1.0` to a service that waits 2 s before answering (`added_latency_ms`),
  with `timeout_ms: 300` and `max_concurrency: 4`, so most mirrors are shed;
- `down`: `share: 1.0` to a port where nothing listens.

An asyncio client keeps 8 SSE chats in flight against each in turn, round after
round in a changing order, and records each request's time to the first token
event. Figures: each variant's TTFT p99 and throughput over `off`'s in the same
round (median over rounds), and the added p99 in milliseconds. Goal: `spare`
keeps ≥ 0.95 of the throughput and adds ≤ 2 ms to TTFT p99; `slow` and `down`
leave the primary as fast, while their mirrors are shed or fail (counted).

"Spare capacity" is arranged, where the machine has two CPUs: the primaries and
the client share the first, the mirror targets get the second to themselves,
so a mirror costs the primary only what sending it costs, not a core shared
with its candidate. On a shared machine throughput ratios drift with the
neighbours; the primary's CPU seconds per request (its process tree, read
around each drive) do much less, so they are printed side by side with and
without mirroring, and their ratio is a figure of its own.

    python -m rolescope.bench mirroring [--quick]
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import yaml

from rolescope.bench.service_overhead import cpu_pair, pin_threads
from rolescope.bench.telemetry_cost import round_order
from rolescope.procstats import children_of, cpu_seconds
from rolescope.tune.mirroring import mirror_counts

CONCURRENCY = 8


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _roles(folder: Path, mirror: dict[str, object] | None) -> Path:
    from rolescope.settings import bundled_roles_path

    role = yaml.safe_load((bundled_roles_path() / "sherlock.yaml").read_text())
    role["inference"]["simulator"].update({"ttft_ms": 20, "tokens_per_second": 2000, "jitter": 0})
    if mirror is not None:
        role["mirror"] = mirror
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sherlock.yaml").write_text(yaml.safe_dump(role))
    return folder


async def _drive(url: str, seconds: float) -> tuple[list[float], float]:
    """(TTFT of every request, requests per second) with CONCURRENCY streams in flight."""
    ttfts: list[float] = []
    deadline = time.perf_counter() + seconds
    body = {"message": "Who stole the pearl, and why did the dog not bark?", "stream": True}

    async def user(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            first: float | None = None
            async with client.stream("POST", f"{url}/v1/chat", json=body) as response:
                async for chunk in response.aiter_bytes():
                    if first is None and b"event: token" in chunk:
                        first = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(f"the primary answered {response.status_code}")
            if first is not None:
                ttfts.append(first)

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(user(client) for _ in range(CONCURRENCY)))
    return ttfts, len(ttfts) / (time.perf_counter() - started)


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


def _pin_tree(pid: int, cpu: str | None) -> None:
    for each in (pid, *children_of(pid)):
        pin_threads(each, cpu)


def _against_off(
    name: str,
    p99: dict[str, list[float]],
    rps: dict[str, list[float]],
    cpu: dict[str, list[float]],
    mirrored: dict[str, float],
) -> dict[str, float]:
    """Paired with `off` in the same round, median over rounds (machine drift cancels out)."""
    pairs_p99 = list(zip(p99[name], p99["off"], strict=True))
    pairs_rps = list(zip(rps[name], rps["off"], strict=True))
    pairs_cpu = list(zip(cpu[name], cpu["off"], strict=True))
    figures = {
        f"mirror_{name}_throughput_ratio": statistics.median(r / o for r, o in pairs_rps),
        f"mirror_{name}_ttft_p99_ratio": statistics.median(o / v for v, o in pairs_p99),
        f"mirror_{name}_ttft_p99_added_ms": statistics.median((v - o) * 1000 for v, o in pairs_p99),
        # Above 1 when mirroring costs the primary CPU: primary CPU per request, with ÷ without.
        f"mirror_{name}_cpu_per_request_ratio": statistics.median(c / o for c, o in pairs_cpu),
    }
    for outcome in ("ok", "shed", "failed", "timeout"):
        figures[f"mirror_{name}_{outcome}"] = mirrored.get(outcome, 0.0)
    return figures


def run(quick: bool = False) -> dict[str, float]:
    from rolescope.serving.launcher import launch_service

    seconds, rounds = (3.0, 2) if quick else (6.0, 5)
    env = {"ROLESCOPE_LOG_LEVEL": "warning", "ROLESCOPE_CONCURRENCY_LIMIT": "0"}
    with tempfile.TemporaryDirectory(prefix="rolescope-bench-") as tmp, ExitStack() as running:
        work = Path(tmp)
        spare = running.enter_context(
            launch_service(roles_path=_roles(work / "spare-roles", None), db_path=work / "spare.db", env=env)
        )
        slow = running.enter_context(launch_service(
            roles_path=_roles(work / "slow-roles", None), db_path=work / "slow.db",
            env={**env, "ROLESCOPE_FAULT_ADDED_LATENCY_MS": "2000"},
        ))
        mirrors: dict[str, dict[str, object] | None] = {
            "off": None,
            "spare": {"to": spare.url, "share": 1.0, "max_concurrency": 64},
            "slow": {"to": slow.url, "share": 1.0, "max_concurrency": 4, "timeout_ms": 300},
            "down": {"to": f"http://127.0.0.1:{_free_port()}", "share": 1.0},
        }
        services = {
            name: running.enter_context(launch_service(
                roles_path=_roles(work / f"{name}-roles", mirror), db_path=work / f"{name}.db", env=env
            ))
            for name, mirror in mirrors.items()
        }
        primary_cpu, target_cpu = cpu_pair()
        allowed = os.sched_getaffinity(0)
        if primary_cpu is not None:
            for target in (spare, slow):
                _pin_tree(target.pid, target_cpu)
            for service in services.values():
                _pin_tree(service.pid, primary_cpu)
            os.sched_setaffinity(0, {int(primary_cpu)})
        for service in services.values():
            asyncio.run(_drive(service.url, 0.5))  # warm-up
        p99: dict[str, list[float]] = {name: [] for name in services}
        rps: dict[str, list[float]] = {name: [] for name in services}
        cpu: dict[str, list[float]] = {name: [] for name in services}
        for index in range(rounds):
            for name in round_order(list(services), index):
                before = cpu_seconds(services[name].pid)
                ttfts, throughput = asyncio.run(_drive(services[name].url, seconds))
                cpu[name].append((cpu_seconds(services[name].pid) - before) / max(1, len(ttfts)))
                p99[name].append(_p99(ttfts))
                rps[name].append(throughput)
        counts = {name: mirror_counts(services[name].url) for name in ("spare", "slow", "down")}
        if primary_cpu is not None:
            os.sched_setaffinity(0, allowed)
    figures: dict[str, float] = {}
    placement = (
        f"primaries and client on CPU {primary_cpu}, mirror targets on CPU {target_cpu}"
        if primary_cpu is not None else "one CPU: nothing pinned"
    )
    print(f"mirroring cost ({CONCURRENCY} SSE streams, 1 worker, {rounds} rounds x {seconds:.0f} s; "
          f"{placement}):")
    for name in services:
        p99_ms, median_rps = statistics.median(p99[name]) * 1000, statistics.median(rps[name])
        cpu_ms = statistics.median(cpu[name]) * 1000
        line = (f"  {name:<6} TTFT p99 {p99_ms:6.1f} ms, {median_rps:6.0f} req/s, "
                f"primary CPU {cpu_ms:5.2f} ms/req")
        if name != "off":
            figures |= _against_off(name, p99, rps, cpu, counts[name])
            line += (
                f"  | CPU/req {figures[f'mirror_{name}_cpu_per_request_ratio']:.3f}, "
                f"throughput {figures[f'mirror_{name}_throughput_ratio']:.3f}, "
                f"TTFT p99 ratio {figures[f'mirror_{name}_ttft_p99_ratio']:.3f} "
                f"({figures[f'mirror_{name}_ttft_p99_added_ms']:+.1f} ms); mirrors "
                + ", ".join(f"{k} {v:.0f}" for k, v in sorted(counts[name].items()))
            )
        print(line)
    print("  goal: spare >= 0.95 throughput (CPU/req <= 1.05), <= 2 ms added TTFT p99; "
          "slow and down shed or fail")
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
