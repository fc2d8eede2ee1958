"""What telemetry costs: the same role service with telemetry off, at its defaults, and tracing everything.

Three services run side by side on loopback, each one uvicorn worker, with the
sherlock role made near-instant (simulator TTFT 0, 100k tokens/s) so the cost
of telemetry is not hidden behind simulated waiting:

- `off`: `ROLESCOPE_TELEMETRY=false` (no metrics, no middleware, no SDK);
- `default`: all metrics and exemplars, traces head-sampled at 10 % to a live
  OTLP/HTTP receiver run here;
- `traced_all`: the same with every request traced.

wrk drives `POST /v1/chat` (non-streaming, 16 connections) at each in turn,
round after round, in an order that changes every round. The figures are
throughput ratios against `off` measured in the same round, median over the
rounds, so machine speed and load drifting during the run cancel out. Target:
`default` keeps at least 0.90.

Each run also reads the service's CPU time (psutil), for CPU seconds per
request: a single-worker service that is CPU-bound serves 1 / (CPU per request)
requests a second when it has a core to itself, and that figure hardly moves when
other work shares the machine, so `off`'s CPU per request over the variant's is
printed next to the throughput ratio as a steadier estimate of the same cost.

    python -m rolescope.bench.telemetry_cost [--quick]
"""

from __future__ import annotations

import re
import shutil
import statistics
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from rolescope.errors import EnvironmentProblem
from rolescope.procstats import process_cpu_seconds

if TYPE_CHECKING:
    from rolescope.serving.launcher import ServiceProcess

_POST_SCRIPT = """wrk.method = "POST"
wrk.body = '{"message": "Who stole the pearl, and why did the dog not bark?"}'
wrk.headers["Content-Type"] = "application/json"
"""
_RPS = re.compile(r"Requests/sec:\s+([0-9.]+)")
_REQUESTS = re.compile(r"(\d+) requests in ")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")


class _Receiver(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP exports and answers like a collector (empty ExportTraceServiceResponse)."""

    spans_bytes = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).spans_bytes += len(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@contextmanager
def otlp_receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def fast_roles(folder: Path) -> Path:
    from rolescope.settings import bundled_roles_path

    role = yaml.safe_load((bundled_roles_path() / "sherlock.yaml").read_text())
    role["inference"]["simulator"].update({"ttft_ms": 0, "tokens_per_second": 100_000, "jitter": 0})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sherlock.yaml").write_text(yaml.safe_dump(role))
    return folder


def wrk_rps(url: str, script: Path, seconds: int, connections: int = 16) -> float:
    return wrk_run(url, script, seconds, connections)[0]


def wrk_run(url: str, script: Path, seconds: int, connections: int = 16) -> tuple[float, int]:
    """(requests per second, requests completed) of one wrk run."""
    import subprocess

    wrk = shutil.which("wrk")
    if wrk is None:
        raise EnvironmentProblem("wrk is not installed: run `make system-deps` (Debian package wrk)")
    done = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), f"{url}/v1/chat"],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    )
    non_2xx = _NON_2XX.search(done.stdout)
    if non_2xx:
        raise EnvironmentProblem(f"{non_2xx.group(1)} requests failed during the benchmark:\n{done.stdout}")
    found, count = _RPS.search(done.stdout), _REQUESTS.search(done.stdout)
    if found is None or count is None:
        raise EnvironmentProblem(f"could not read wrk's output:\n{done.stdout}")
    return float(found.group(1)), int(count.group(1))


def measure(service: ServiceProcess, script: Path, seconds: int) -> tuple[float, float]:
    """(requests per second, CPU seconds per request) of the service under one wrk run."""
    before = process_cpu_seconds(service.pid)
    rps, requests = wrk_run(service.url, script, seconds)
    return rps, (process_cpu_seconds(service.pid) - before) / max(requests, 1)


def round_order(names: list[str], round_index: int) -> list[str]:
    """Each round starts with another variant and alternate rounds run backwards, so no variant
    always runs first, last, or right after the same neighbour (machine noise hits all alike)."""
    shift = round_index % len(names)
    order = names[shift:] + names[:shift]
    return order[::-1] if round_index % 2 else order


def paired_ratio(results: dict[str, list[float]], name: str) -> float:
    """Median over rounds of `name`'s throughput over `off`'s in the same round."""
    return statistics.median(value / off for value, off in zip(results[name], results["off"], strict=True))


def run(quick: bool = False) -> dict[str, float]:
    """Throughput of default and full tracing relative to telemetry off; prints and returns the ratios."""
    from rolescope.serving.launcher import launch_service

    seconds, rounds = (2, 3) if quick else (4, 7)
    with tempfile.TemporaryDirectory(prefix="rolescope-bench-") as tmp, otlp_receiver() as endpoint:
        work = Path(tmp)
        roles = fast_roles(work / "roles")
        script = work / "post.lua"
        script.write_text(_POST_SCRIPT)
        common = {"ROLESCOPE_LOG_LEVEL": "warning", "ROLESCOPE_CONCURRENCY_LIMIT": "0"}
        variants = {
            "off": {"ROLESCOPE_TELEMETRY": "false"},
            "default": {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint},
            "traced_all": {
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_TRACES_SAMPLER": "parentbased_always_on",
            },
        }
        results: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        with ExitStack() as running:  # every started service is stopped, even if a later one fails
            services = {
                name: running.enter_context(
                    launch_service(roles_path=roles, db_path=work / f"{name}.db", env={**common, **env})
                )
                for name, env in variants.items()
            }
            for service in services.values():
                wrk_rps(service.url, script, 1)  # warm-up: imports, SQLite pages, first spans
            for index in range(rounds):
                for name in round_order(list(services), index):
                    rps, cpu_per_request = measure(services[name], script, seconds)
                    results[name].append(rps)
                    cpu[name].append(cpu_per_request)
    # CPU per request does not depend on how much of the machine other work leaves the
    # service, so its inverse ratio is a steadier estimate of the same cost.
    cpu_cost = {name: [1 / c if c else 0.0 for c in values] for name, values in cpu.items()}
    figures = {
        "telemetry_default_throughput_ratio": paired_ratio(results, "default"),
        "telemetry_traced_all_throughput_ratio": paired_ratio(results, "traced_all"),
        "telemetry_default_cpu_ratio": paired_ratio(cpu_cost, "default"),
        "telemetry_traced_all_cpu_ratio": paired_ratio(cpu_cost, "traced_all"),
    }
    print(f"telemetry cost (wrk, POST /v1/chat, 1 worker, {rounds} interleaved rounds x {seconds} s):")
    for name, values in results.items():
        spread = f"{min(values):.0f}-{max(values):.0f}"
        print(
            f"  {name:<11} {statistics.median(values):6.0f} req/s (rounds {spread}), "
            f"{statistics.median(cpu[name]) * 1e6:5.0f} µs CPU/request"
        )
    print("  ratios against off, median over rounds of the same round's pair:")
    print(
        f"  default / off    = {figures['telemetry_default_throughput_ratio']:.3f} throughput, "
        f"{figures['telemetry_default_cpu_ratio']:.3f} by CPU per request  (target >= 0.90)"
    )
    print(
        f"  traced_all / off = {figures['telemetry_traced_all_throughput_ratio']:.3f} throughput, "
        f"{figures['telemetry_traced_all_cpu_ratio']:.3f} by CPU per request"
    )
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
