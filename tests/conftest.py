"""Fixtures shared by every test folder: free loopback ports and a real Prometheus.

Everything here binds 127.0.0.1 only and cleans up after itself.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml


def find_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def free_port() -> int:
    return find_free_port()


@dataclass
class PrometheusServer:
    url: str
    process: subprocess.Popen[bytes]
    config_path: Path

    def query(self, promql: str) -> list[dict]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def wait_for(self, promql: str, timeout: float = 30.0) -> list[dict]:
        """Poll until the query returns at least one series."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if result or time.monotonic() > deadline:
                return result
            time.sleep(0.5)

    def reload(self) -> None:
        httpx.post(f"{self.url}/-/reload", timeout=10).raise_for_status()


PrometheusFactory = Callable[..., PrometheusServer]


@pytest.fixture
def prometheus_server(tmp_path: Path) -> Iterator[PrometheusFactory]:
    """Start a real Prometheus (Debian package) on 127.0.0.1 scraping the given targets.

    Usage: `prom = prometheus_server(targets=["127.0.0.1:8080"], rule_files=[path])`.
    """
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: run `make system-deps` (Debian package prometheus)")
    started: list[subprocess.Popen[bytes]] = []

    def start(
        targets: list[str],
        rule_files: list[Path] | None = None,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        metrics_path: str = "/metrics",
    ) -> PrometheusServer:
        port = find_free_port()
        workdir = tmp_path / f"prometheus-{port}"
        workdir.mkdir()
        config = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
            "rule_files": [str(p) for p in (rule_files or [])],
            "scrape_configs": [
                {
                    "job_name": "rolescope",
                    "metrics_path": metrics_path,
                    "static_configs": [{"targets": targets}],
                }
            ],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        log = (workdir / "prometheus.log").open("wb")
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
                "--enable-feature=exemplar-storage",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"prometheus exited: {(workdir / 'prometheus.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    return PrometheusServer(url=url, process=process, config_path=config_path)
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail("prometheus did not become ready within 30 s")

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
