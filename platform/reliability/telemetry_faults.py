"""The tracing endpoint goes down, turns into a black hole, then comes back — all under load.

Requests must not fail or slow down because of telemetry: spans that cannot be exported are
dropped and counted (`rolescope_telemetry_dropped_total`), memory stays bounded (the span queue
is bounded), and export resumes once the collector is back.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from rolescope.exporters import names
from rolescope.reliability.disconnects import metric_sum
from rolescope.reliability.otlp_sink import Mode, OtlpSink
from rolescope.reliability.process import ManagedService, write_test_roles
from rolescope.reliability.workload import WriteTally, acknowledged_writes

# (mode, seconds) — the collector's life during the run.
DEFAULT_PHASES: tuple[tuple[Mode, float], ...] = (("up", 2.0), ("down", 2.0), ("blackhole", 3.0), ("up", 4.0))


async def telemetry_faults_run(
    workdir: Path, phases: tuple[tuple[Mode, float], ...] = DEFAULT_PHASES, writers: int = 4
) -> dict[str, float]:
    sink = OtlpSink().start(phases[0][0])
    roles = write_test_roles(workdir / "roles")
    service = ManagedService(workdir, {
        "ROLESCOPE_ROLES_PATH": str(roles),
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
        "OTEL_TRACES_SAMPLER": "always_on",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_BSP_MAX_QUEUE_SIZE": "512",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
    })
    figures: dict[str, float] = {}
    try:
        await asyncio.to_thread(service.start)
        baseline_rss = service.stats().rss_bytes
        peak_rss = baseline_rss
        tally, stop = WriteTally(), asyncio.Event()
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
            tasks = [asyncio.create_task(acknowledged_writes(client, stop, tally, role="fast"))
                     for _ in range(writers)]
            requests_before_back = 0
            for index, (mode, seconds) in enumerate(phases):
                sink.set_mode(mode)
                if index == len(phases) - 1:
                    requests_before_back = sink.requests
                loop_end = asyncio.get_running_loop().time() + seconds
                while asyncio.get_running_loop().time() < loop_end:
                    await asyncio.sleep(0.25)
                    peak_rss = max(peak_rss, service.stats().rss_bytes)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
            dropped = metric_sum((await client.get("/metrics")).text, names.TELEMETRY_DROPPED_TOTAL)
        figures = {
            "otlp_requests_ok": float(tally.outcomes.get("200", 0)),
            "otlp_failed_requests": float(sum(v for k, v in tally.outcomes.items() if k != "200")),
            "otlp_spans_dropped": dropped,
            "otlp_exports_after_back": float(sink.requests - requests_before_back),
            "otlp_peak_rss_growth_mb": round((peak_rss - baseline_rss) / 2**20, 2),
        }
    finally:
        await asyncio.to_thread(service.terminate, 15)
        sink.stop()
    return figures
