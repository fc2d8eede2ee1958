"""The load generator's metrics, scraped by a real Prometheus while a real Locust run goes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from rolescope.exporters import names
from rolescope.loadtests.runner import LoadOptions, run_load


def test_prometheus_scrapes_load_counters_and_latency_histograms(
    tmp_path: Path,
    service_factory: Callable[..., object],
    prometheus_server: Callable[..., object],
    free_port: int,
) -> None:
    svc = service_factory()
    options = LoadOptions(
        host=svc.url,
        out=tmp_path / "run",
        users=4,
        speed=100.0,
        duration_s=6,  # type: ignore[attr-defined]
        user="stream",
        processes=2,
        metrics_port=free_port,
    )
    errors: list[BaseException] = []

    def load() -> None:
        try:
            run_load(options)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    runner = threading.Thread(target=load)
    runner.start()
    try:
        prom = prometheus_server(targets=[f"127.0.0.1:{free_port}"])
        ttft = prom.wait_for(f'{names.LOAD_TTFT}_bucket{{name="stream",le="+Inf"}} > 0')  # type: ignore[attr-defined]
        requests = prom.wait_for(f'{names.LOAD_REQUESTS_TOTAL}{{name="stream",method="POST"}} > 0')  # type: ignore[attr-defined]
        users = prom.wait_for(f"{names.LOAD_USERS} > 0")  # type: ignore[attr-defined]
        p90 = prom.wait_for(  # type: ignore[attr-defined]
            f"histogram_quantile(0.9, sum by (le) (rate({names.LOAD_REQUEST_DURATION}_bucket[5s]))) > 0"
        )
    finally:
        runner.join(timeout=120)
    assert not errors, errors
    assert ttft and requests and p90
    assert float(users[0]["value"][1]) == 4
