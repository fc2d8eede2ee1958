"""SSE streams aborted mid-reply: generation must stop and the process must return to its baseline.

A client that drops a stream leaves nothing behind: no task still generating, no open socket or
file, no memory that keeps growing. Measured from outside the process (psutil, /metrics), after
a warm-up of the same work, so that one-off start-up allocations are not counted as a leak.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from rolescope.exporters import names
from rolescope.procstats import ProcessStats
from rolescope.reliability.process import ManagedService, write_test_roles
from rolescope.reliability.workload import aborted_stream

SETTLE_TIMEOUT_S = 10.0
# Allowed growth of resident memory after the run, relative to the warmed-up baseline.
RSS_TOLERANCE_BYTES = 16 * 1024 * 1024


def metric_sum(text: str, family: str, **labels: str) -> float:
    """Sum of the samples named `family` in a /metrics page, only those with `labels` if given."""
    total = 0.0
    for metric in text_string_to_metric_families(text):
        for sample in metric.samples:
            if sample.name == family and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def _scrape(client: httpx.AsyncClient) -> str:
    return (await client.get("/metrics")).text


async def _abort_many(client: httpx.AsyncClient, count: int, concurrency: int) -> int:
    semaphore = asyncio.Semaphore(concurrency)
    aborted = 0

    async def one() -> None:
        nonlocal aborted
        async with semaphore:
            try:
                if await aborted_stream(client, role="slow"):
                    aborted += 1
            except httpx.HTTPError:
                pass

    await asyncio.gather(*(one() for _ in range(count)))
    return aborted


async def _settle(
    service: ManagedService, client: httpx.AsyncClient, baseline: ProcessStats
) -> tuple[bool, float]:
    """Wait until nothing is in flight and fds/threads are back to the baseline; (settled, seconds)."""
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_TIMEOUT_S:
        in_flight = metric_sum(await _scrape(client), names.HTTP_IN_FLIGHT)
        stats = service.stats()
        # The scrape itself is in flight while it renders.
        if in_flight <= 1 and stats.open_files <= baseline.open_files and stats.threads <= baseline.threads:
            return True, time.monotonic() - started
        await asyncio.sleep(0.1)
    return False, time.monotonic() - started


async def aborted_streams_run(workdir: Path, count: int, concurrency: int = 50) -> dict[str, float]:
    # Replies take ~24 s (120 tokens at 5 per second): a generation that kept running after its client
    # left would still be in flight, and burning CPU, long after the settle timeout.
    roles = write_test_roles(workdir / "roles", slow_tokens_per_second=5.0)
    service = ManagedService(workdir, {"ROLESCOPE_ROLES_PATH": str(roles),
                                       "ROLESCOPE_CONCURRENCY_LIMIT": str(max(256, concurrency * 2))})
    await asyncio.to_thread(service.start)
    try:
        limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=service.url, timeout=30, limits=limits) as client:
            # Warm-up: the same work at a tenth of the size, so caches and pools exist before the baseline.
            await _abort_many(client, max(20, count // 10), concurrency)
            await _settle(service, client, service.stats())
            baseline = service.stats()
            aborted = await _abort_many(client, count, concurrency)
            settled, settle_s = await _settle(service, client, baseline)
            after = service.stats()
            # Generation stopped: an idle process burns (almost) no CPU.
            await asyncio.sleep(1.0)
            idle = service.stats()
    finally:
        await asyncio.to_thread(service.terminate, 15)
    rss_growth = after.rss_bytes - baseline.rss_bytes
    return {
        "aborts_requested": float(count),
        "aborts_mid_reply": float(aborted),
        "aborts_settle_s": round(settle_s, 2),
        "aborts_rss_growth_mb": round(rss_growth / 2**20, 2),
        "aborts_open_files_delta": float(after.open_files - baseline.open_files),
        "aborts_threads_delta": float(after.threads - baseline.threads),
        "aborts_cpu_s_per_s_after_settle": round(idle.cpu_s - after.cpu_s, 3),
        "aborts_not_back_to_baseline": float(not settled or rss_growth > RSS_TOLERANCE_BYTES),
    }
