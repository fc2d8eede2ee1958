"""`capacity --prometheus`: each step's server figures read from a real Prometheus scraping a real service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.timeout(300)


def _capacity_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rolescope", "capacity", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_each_step_reads_the_server_figures_from_prometheus(
    tmp_path: Path, service_factory, prometheus_server, fast_roles_path: Path, one_step_capacity
) -> None:  # type: ignore[no-untyped-def]
    service = service_factory(roles_path=fast_roles_path)
    prometheus = prometheus_server(targets=[service.url.removeprefix("http://")])
    # The chat series exist from the first chat request on (the CLI's target check sends some).
    httpx.post(f"{service.url}/v1/chat", json={"message": "hello"}, timeout=30).raise_for_status()
    prometheus.wait_for('rolescope_http_requests_total{route=~"/v1/chat.*"}')
    outcome = one_step_capacity(
        tmp_path / "run",
        start_rate=8.0,
        target=service.url,
        prometheus=prometheus.url,
        prometheus_selector='job="rolescope"',
    )
    assert outcome.document["service"]["prometheus"] == {"url": prometheus.url, "selector": 'job="rolescope"'}
    step = outcome.steps[0]
    server, client = step.server, step.client
    assert server is not None and server["source"] == f"prometheus {prometheus.url}"
    # The client's judged window, read at 1 s scrapes: the counts agree within a few scrapes' worth.
    assert abs(server["requests"] - client["requests"]) <= 0.3 * client["requests"] + 16, (server, client)
    assert server["ttft_s"]["count"] > 0 and server["ttft_s"]["p50"] is not None
    assert server["cpu_seconds"] > 0 and server["in_flight_max"] >= 1
    # The service's TTFT is part of what the client waited for.
    assert client["ttft_s"]["p50"] >= server["ttft_s"]["p50"] * 0.5


def test_an_unreachable_prometheus_is_one_line_and_exit_2(
    tmp_path: Path, service_factory, fast_roles_path: Path, free_port: int
) -> None:  # type: ignore[no-untyped-def]
    service = service_factory(roles_path=fast_roles_path)
    done = _capacity_cli(
        *(
            "--target",
            service.url,
            "--prometheus",
            f"http://127.0.0.1:{free_port}",
            "--out",
            str(tmp_path / "x"),
        )
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"--prometheus http://127.0.0.1:{free_port}: nothing answers there" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "x" / "load-1").exists()


def test_a_prometheus_without_the_services_series_is_refused_before_any_load(
    tmp_path: Path, service_factory, prometheus_server, fast_roles_path: Path
) -> None:  # type: ignore[no-untyped-def]
    service = service_factory(roles_path=fast_roles_path)
    prometheus = prometheus_server(targets=[service.url.removeprefix("http://")])
    done = _capacity_cli(
        *(
            "--target",
            service.url,
            "--prometheus",
            prometheus.url,
            "--prometheus-selector",
            'job="elsewhere"',
        ),
        *("--out", str(tmp_path / "x")),
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no series rolescope_http_requests_total{" in done.stderr and 'job="elsewhere"' in done.stderr
    assert not (tmp_path / "x" / "load-1").exists()
    assert "--prometheus needs --target" in _capacity_cli("--prometheus", prometheus.url).stderr
