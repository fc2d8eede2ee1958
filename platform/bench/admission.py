"""What a refusal costs: a 503 from the admission limit next to a probe and a served chat.

Measured side by side in one run against one real service process (127.0.0.1): sequential
`GET /healthz`, sequential refused `POST /v1/chat` (every slot held by slow streams), and
sequential served chats on the fast role. The ratios say how much cheaper a refusal is than
the work it protects, and how close it is to the cheapest request the service answers.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from rolescope.reliability.process import ManagedService, write_test_roles

LIMIT = 2


async def _median_ms(call: Callable[[], Awaitable[httpx.Response]], count: int, status: int) -> float:
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        response = await call()
        timings.append(time.perf_counter() - started)
        if response.status_code != status:
            raise RuntimeError(f"expected {status}, got {response.status_code}: {response.text[:200]}")
    return statistics.median(timings) * 1000


async def _measure(workdir: Path, count: int) -> dict[str, float]:
    roles = write_test_roles(workdir / "roles", slow_tokens_per_second=2.0)
    env = {"ROLESCOPE_ROLES_PATH": str(roles), "ROLESCOPE_CONCURRENCY_LIMIT": str(LIMIT)}
    service = ManagedService(workdir, env)
    await asyncio.to_thread(service.start)
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
            chat = {"message": "bench", "role": "fast"}
            served = await _median_ms(lambda: client.post("/v1/chat", json=chat), count, 200)
            probe = await _median_ms(lambda: client.get("/healthz"), count, 200)
            holders = [client.stream("POST", "/v1/chat", json={**chat, "role": "slow", "stream": True})
                       for _ in range(LIMIT)]
            for holder in holders:
                await holder.__aenter__()
            try:
                refused = await _median_ms(lambda: client.post("/v1/chat", json=chat), count, 503)
            finally:
                for holder in holders:
                    await holder.__aexit__(None, None, None)
    finally:
        await asyncio.to_thread(service.terminate, 15)
    return {
        "admission_probe_ms": round(probe, 2),
        "admission_refusal_ms": round(refused, 2),
        "admission_served_chat_ms": round(served, 2),
        "admission_refusal_vs_probe": round(refused / probe, 2),
        "admission_served_vs_refusal": round(served / refused, 2),
    }


def run(quick: bool = False) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="rolescope-bench-admission-") as tmp:
        figures = asyncio.run(_measure(Path(tmp), 50 if quick else 300))
    print(
        f"admission: a 503 refusal takes {figures['admission_refusal_vs_probe']}x a /healthz probe; "
        f"a served chat takes {figures['admission_served_vs_refusal']}x a refusal "
        f"(medians {figures['admission_probe_ms']} / {figures['admission_refusal_ms']} / "
        f"{figures['admission_served_chat_ms']} ms)"
    )
    return figures


if __name__ == "__main__":
    run()
