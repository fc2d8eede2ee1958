"""What telemetry costs: the same role service with telemetry off, at its defaults, and tracing everything.

Three services run side by side on loopback, each one uvicorn worker, with the
sherlock role made near-instant (simulator TTFT 0, 100k tokens/s) so the cost
of telemetry is not hidden behind simulated waiting:

- `off`: `ROLESCOPE_TELEMETRY=false` (no metrics, no middleware, no SDK);
- `default`: all metrics and exemplars, traces head-sampled at 10 % to a live
  OTLP/HTTP receiver run here;
- `traced_all`: the same with every request traced.

wrk drives `POST /v1/chat` (non-streaming) at each in turn, round after round,
and the figures are throughput ratios against `off` (medians over rounds), so
machine speed cancels out. Target: `default` keeps at least 0.90.

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

import yaml

from rolescope.errors import EnvironmentProblem

_POST_SCRIPT = """wrk.method = "POST"
wrk.body = '{"message": "Who stole the pearl, and why did the dog not bark?"}'
wrk.headers["Content-Type"] = "application/json"
"""
_RPS = re.compile(r"Requests/sec:\s+([0-9.]+)")
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
    found = _RPS.search(done.stdout)
    if found is None:
        raise EnvironmentProblem(f"could not read wrk's output:\n{done.stdout}")
    return float(found.group(1))


def run(quick: bool = False) -> dict[str, float]:
    """Throughput of default and full tracing relative to telemetry off; prints and returns the ratios."""
    from rolescope.service.launcher import launch_service

    seconds, rounds = (2, 2) if quick else (5, 3)
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
        with ExitStack() as running:  # every started service is stopped, even if a later one fails
            services = {
                name: running.enter_context(
                    launch_service(roles_path=roles, db_path=work / f"{name}.db", env={**common, **env})
                )
                for name, env in variants.items()
            }
            for service in services.values():
                wrk_rps(service.url, script, 1)  # warm-up: imports, SQLite pages, first spans
            for _ in range(rounds):
                for name, service in services.items():
                    results[name].append(wrk_rps(service.url, script, seconds))
    off = statistics.median(results["off"])
    figures = {
        "telemetry_default_throughput_ratio": statistics.median(results["default"]) / off,
        "telemetry_traced_all_throughput_ratio": statistics.median(results["traced_all"]) / off,
    }
    print(f"telemetry cost (wrk, POST /v1/chat, 1 worker, {rounds} rounds x {seconds} s, medians):")
    for name, values in results.items():
        print(f"  {name:<11} {statistics.median(values):8.0f} req/s")
    print(f"  default / off    = {figures['telemetry_default_throughput_ratio']:.3f}  (target >= 0.90)")
    print(f"  traced_all / off = {figures['telemetry_traced_all_throughput_ratio']:.3f}")
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
