"""Soak: hold the service at 40 % of its measured capacity and watch for slow leaks.

    python -m rolescope.reliability.soak --minutes 10        # `make soak`
    python -m rolescope.reliability.soak --minutes 60 --json soak.json

First the capacity is measured (closed loop, 32 clients, 5 s); then an open-model Poisson
load at `--load` × capacity runs for `--minutes`, mixing new sessions, continued sessions
and streams. Every 5 s the process's resident memory, open files, threads and the time to
render /metrics are sampled. After a warm-up (the first fifth, at least 30 s) each series
gets a least-squares slope: memory per hour is the headline (under 1 MB/h over an hour-long
run), the others should be flat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from rolescope.reliability.process import ManagedService, write_test_roles
from rolescope.reliability.workload import read_stream, unique_message

SAMPLE_EVERY_S = 5.0
PROGRESS_EVERY_S = 60.0
MAX_OUTSTANDING = 512
MEMORY_SLOPE_LIMIT_MB_PER_H = 1.0


@dataclass
class Samples:
    t: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    open_files: list[float] = field(default_factory=list)
    threads: list[float] = field(default_factory=list)
    metrics_ms: list[float] = field(default_factory=list)


def slope_per_hour(t: list[float], values: list[float]) -> float:
    """Least-squares slope of `values` over `t` (seconds), per hour; 0 with fewer than 3 points."""
    if len(t) < 3:
        return 0.0
    slope, _ = np.polyfit(np.asarray(t), np.asarray(values), 1)
    return float(slope) * 3600.0


async def measure_capacity(client: httpx.AsyncClient, seconds: float = 5.0, clients: int = 32) -> float:
    done = 0
    deadline = time.monotonic() + seconds

    async def loop() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            response = await client.post("/v1/chat", json={"message": unique_message("cap"), "role": "fast"})
            if response.status_code == 200:
                done += 1

    await asyncio.gather(*(loop() for _ in range(clients)))
    return done / seconds


class Traffic:
    """The soak's request mix; counts outcomes."""

    def __init__(self, client: httpx.AsyncClient, rng: random.Random) -> None:
        self.client = client
        self.rng = rng
        self.sessions: list[str] = []
        self.ok = 0
        self.failed = 0
        self.failures: Counter[str] = Counter()  # why, so that one failure in 100,000 is explained

    async def one(self) -> None:
        draw = self.rng.random()
        reason = ""
        try:
            if draw < 0.1:
                outcome = await read_stream(self.client, unique_message("soak"), role="fast")
                if not outcome.acked:
                    ended = outcome.terminal or "nothing"
                    reason = f"stream: HTTP {outcome.status}, {outcome.events} events, ended by {ended}"
            else:
                body: dict[str, object] = {"message": unique_message("soak"), "role": "fast"}
                if draw < 0.8 and self.sessions:
                    body["session_id"] = self.rng.choice(self.sessions)
                response = await self.client.post("/v1/chat", json=body)
                if response.status_code != 200:
                    reason = f"HTTP {response.status_code}: {response.text[:120]}"
                elif len(self.sessions) < 200:
                    self.sessions.append(response.json()["session_id"])
        except httpx.HTTPError as exc:
            reason = f"{type(exc).__name__}: {exc}"[:160]
        if reason:
            self.failed += 1
            self.failures[reason] += 1
        else:
            self.ok += 1


async def sample(
    service: ManagedService, client: httpx.AsyncClient, samples: Samples, started: float
) -> None:
    stats = service.stats()
    before = time.perf_counter()
    await client.get("/metrics")
    samples.t.append(time.monotonic() - started)
    samples.metrics_ms.append((time.perf_counter() - before) * 1000)
    samples.rss_mb.append(stats.rss_bytes / 2**20)
    samples.open_files.append(stats.open_files)
    samples.threads.append(stats.threads)


def progress_line(elapsed_s: float, minutes: float, ok: int, failed: int, samples: Samples) -> str:
    """One line per minute on standard error, so an hour-long run is not silent."""
    line = f"soak: {elapsed_s / 60:.0f}/{minutes:g} min, {ok:,} ok, {failed:,} failed"
    if samples.t:
        line += f", RSS {samples.rss_mb[-1]:.1f} MB, /metrics {samples.metrics_ms[-1]:.1f} ms"
    return line


async def soak(
    workdir: Path, minutes: float, load: float, seed: int = 40
) -> tuple[dict[str, float], Samples]:
    roles = write_test_roles(workdir / "roles", fast_tokens_per_second=4000.0)
    env = {"ROLESCOPE_ROLES_PATH": str(roles), "ROLESCOPE_CONCURRENCY_LIMIT": "0"}
    service = ManagedService(workdir, env)
    await asyncio.to_thread(service.start)
    rng = random.Random(seed)
    samples = Samples()
    try:
        limits = httpx.Limits(max_connections=MAX_OUTSTANDING, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=service.url, timeout=30, limits=limits) as client:
            capacity = await measure_capacity(client)
            rate = max(1.0, capacity * load)
            traffic = Traffic(client, rng)
            pending: set[asyncio.Task[None]] = set()
            started = time.monotonic()
            end = started + minutes * 60
            next_sample = started
            next_arrival = started
            next_progress = started + PROGRESS_EVERY_S
            dropped = 0
            print(
                f"soak: capacity {capacity:.0f} req/s, offering {rate:.0f} req/s for {minutes:g} min",
                file=sys.stderr,
                flush=True,
            )
            while time.monotonic() < end:
                now = time.monotonic()
                if now >= next_sample:
                    await sample(service, client, samples, started)
                    next_sample += SAMPLE_EVERY_S
                if now >= next_progress:
                    line = progress_line(now - started, minutes, traffic.ok, traffic.failed, samples)
                    print(line, file=sys.stderr, flush=True)
                    next_progress += PROGRESS_EVERY_S
                while next_arrival <= now:
                    if len(pending) < MAX_OUTSTANDING:
                        task = asyncio.create_task(traffic.one())
                        pending.add(task)
                        task.add_done_callback(pending.discard)
                    else:
                        dropped += 1  # the client cannot keep up; counted, not silently queued
                    next_arrival += rng.expovariate(rate)
                await asyncio.sleep(max(0.0, min(next_arrival, next_sample) - time.monotonic()))
            await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), timeout=60)
            await sample(service, client, samples, started)
    finally:
        await asyncio.to_thread(service.terminate, 15)
    for reason, count in traffic.failures.most_common(20):
        print(f"soak: {count} failed: {reason}", file=sys.stderr)
    return summarise(samples, capacity, rate, traffic, dropped, minutes), samples


def write_series(path: Path, samples: Samples) -> None:
    """Every sample as CSV, so a slope can be looked at, not just read."""
    rows = ["t_s,rss_mb,open_files,threads,metrics_ms"]
    rows += [
        f"{t:.1f},{rss:.2f},{files:.0f},{threads:.0f},{ms:.2f}"
        for t, rss, files, threads, ms in zip(
            samples.t, samples.rss_mb, samples.open_files, samples.threads, samples.metrics_ms, strict=True
        )
    ]
    path.write_text("\n".join(rows) + "\n")


def summarise(
    samples: Samples, capacity: float, rate: float, traffic: Traffic, dropped: int, minutes: float
) -> dict[str, float]:
    warm = max(30.0, minutes * 60 / 5)
    keep = [i for i, t in enumerate(samples.t) if t >= warm] or list(range(len(samples.t)))
    t = [samples.t[i] for i in keep]

    def pick(series: list[float]) -> list[float]:
        return [series[i] for i in keep]

    return {
        "soak_minutes": minutes,
        "soak_capacity_rps": round(capacity, 1),
        "soak_offered_rps": round(rate, 1),
        "soak_requests_ok": float(traffic.ok),
        "soak_failed_requests": float(traffic.failed),
        "soak_client_dropped_arrivals": float(dropped),
        "soak_rss_mb_start": round(pick(samples.rss_mb)[0], 1),
        "soak_rss_mb_end": round(pick(samples.rss_mb)[-1], 1),
        "soak_rss_slope_mb_per_h": round(slope_per_hour(t, pick(samples.rss_mb)), 2),
        "soak_open_files_slope_per_h": round(slope_per_hour(t, pick(samples.open_files)), 2),
        "soak_threads_slope_per_h": round(slope_per_hour(t, pick(samples.threads)), 2),
        "soak_open_files_max_minus_min": max(pick(samples.open_files)) - min(pick(samples.open_files)),
        "soak_threads_max_minus_min": max(pick(samples.threads)) - min(pick(samples.threads)),
        "soak_metrics_ms_first": round(pick(samples.metrics_ms)[0], 2),
        "soak_metrics_ms_last": round(pick(samples.metrics_ms)[-1], 2),
        "soak_metrics_ms_slope_per_h": round(slope_per_hour(t, pick(samples.metrics_ms)), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rolescope.reliability.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to hold the load (default 10)")
    parser.add_argument("--load", type=float, default=0.4, help="share of measured capacity (default 0.4)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    parser.add_argument(
        "--series",
        type=Path,
        default=None,
        help="also write every 5-second sample (memory, files, threads, /metrics ms) as CSV",
    )
    args = parser.parse_args(argv)
    if args.minutes <= 0 or not 0 < args.load <= 1:
        parser.error("--minutes must be positive and --load within (0, 1]")
    from rolescope.reliability.table import print_table

    with tempfile.TemporaryDirectory(prefix="rolescope-soak-") as tmp:
        figures, samples = asyncio.run(soak(Path(tmp), args.minutes, args.load))
    print_table(figures, title="rolescope soak")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    if args.series:
        write_series(args.series, samples)
    problems = []
    if figures["soak_failed_requests"]:
        problems.append("failed requests")
    if args.minutes >= 60 and figures["soak_rss_slope_mb_per_h"] >= MEMORY_SLOPE_LIMIT_MB_PER_H:
        problems.append(f"memory grows {figures['soak_rss_slope_mb_per_h']} MB/h")
    if problems:
        print("soak failed: " + ", ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
