"""Overload: open-model arrivals at twice the measured capacity, against the admission limit.

What must hold: requests beyond the limit get 503 + Retry-After quickly (p99 reported, the
target is under 50 ms), there are no other 5xx, and the admitted requests keep their latency
(p99 compared with the same measurement at half the capacity, side by side in one run).
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import httpx
import numpy as np

from rolescope.reliability.process import ManagedService, write_test_roles
from rolescope.reliability.soak import measure_capacity
from rolescope.reliability.workload import unique_message


async def _open_model(
    client: httpx.AsyncClient, rate: float, seconds: float, seed: int
) -> dict[str, list[float]]:
    rng = random.Random(seed)
    latencies: dict[str, list[float]] = {"ok": [], "503": [], "other_5xx": [], "other": []}

    async def one() -> None:
        started = time.perf_counter()
        try:
            response = await client.post("/v1/chat", json={"message": unique_message("ovl"), "role": "fast"})
            status = response.status_code
            if status == 503 and not response.headers.get("retry-after"):
                status = 599  # a 503 without Retry-After counts as a failure
        except httpx.HTTPError:
            status = 0
        elapsed = time.perf_counter() - started
        key = "ok" if status == 200 else "503" if status == 503 else "other_5xx" if status >= 500 else "other"
        latencies[key].append(elapsed)

    tasks: list[asyncio.Task[None]] = []
    end = time.monotonic() + seconds
    next_arrival = time.monotonic()
    while next_arrival < end:
        await asyncio.sleep(max(0.0, next_arrival - time.monotonic()))
        tasks.append(asyncio.create_task(one()))
        next_arrival += rng.expovariate(rate)
    await asyncio.gather(*tasks)
    return latencies


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else 0.0


async def overload_run(workdir: Path, seconds: float = 10.0, concurrency_limit: int = 16) -> dict[str, float]:
    roles = write_test_roles(workdir / "roles", fast_tokens_per_second=4000.0)
    service = ManagedService(workdir, {"ROLESCOPE_ROLES_PATH": str(roles),
                                       "ROLESCOPE_CONCURRENCY_LIMIT": str(concurrency_limit)})
    await asyncio.to_thread(service.start)
    try:
        limits = httpx.Limits(max_connections=1024, max_keepalive_connections=256)
        async with httpx.AsyncClient(base_url=service.url, timeout=30, limits=limits) as client:
            capacity = await measure_capacity(client, clients=concurrency_limit)
            calm = await _open_model(client, capacity * 0.5, seconds, seed=1)
            storm = await _open_model(client, capacity * 2.0, seconds, seed=2)
    finally:
        await asyncio.to_thread(service.terminate, 15)
    return {
        "overload_capacity_rps": round(capacity, 1),
        "overload_offered_rps": round(capacity * 2, 1),
        "overload_admitted": float(len(storm["ok"])),
        "overload_rejected_503": float(len(storm["503"])),
        "overload_other_5xx": float(len(storm["other_5xx"])),
        "overload_failed_requests": float(len(storm["other"]) + len(calm["other"]) + len(calm["other_5xx"])),
        "overload_503_p99_ms": round(_p(storm["503"], 99), 1),
        "overload_admitted_p99_ms": round(_p(storm["ok"], 99), 1),
        "overload_calm_p99_ms": round(_p(calm["ok"], 99), 1),
        "overload_admitted_p99_ratio": round(_p(storm["ok"], 99) / max(_p(calm["ok"], 99), 1e-9), 2),
    }
