"""Is the load generator ever the bottleneck? Two ratios, measured side by side in one run.

1. CPU time per request of the streaming replay user (SSE parsing, per-token
   timing, sample collection) over that of a bare `FastHttpUser` POST reading
   the same stream in one piece: target at most 1.3x.
2. Requests per second one Locust process drives with the streaming replay
   user, over what `wrk` reaches against the same endpoint with as many
   connections: target at least 0.70.

Both talk to one real role service on loopback whose role answers quickly
(short time to first token, fast tokens), so the client side is what is
being measured.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

BODY = {"message": "Who took the bicycle?", "role": "sherlock", "stream": True}
LOCUSTFILE = """
import json, os, time
from locust import FastHttpUser, constant, events, task
from rolescope.loadtests.collector import SampleCollector
from rolescope.loadtests.load_config import load_config_from_env
from rolescope.loadtests.replay_context import ReplayContext
from rolescope.loadtests.users import ReplayUserBase

KIND = os.environ["BENCH_KIND"]
BODY = os.environ["BENCH_BODY"]
HEADERS = {"Content-Type": "application/json", "Accept": "text/event-stream", "Accept-Encoding": "identity"}
STATE = {"requests": 0}

if KIND == "bare":
    class BarePost(FastHttpUser):
        wait_time = constant(0)

        @task
        def post(self):
            self.client.post("/v1/chat", data=BODY, headers=HEADERS, name="bare")
else:
    class StreamReplay(ReplayUserBase):
        replay = ReplayContext.from_config(load_config_from_env())
        force_stream = True


@events.init.add_listener
def _init(environment, **_):
    if KIND != "bare":
        SampleCollector(None).attach(environment.events, "local")

    def count(**_):
        STATE["requests"] += 1

    environment.events.request.add_listener(count)


@events.test_start.add_listener
def _start(**_):
    STATE.update(cpu=time.process_time(), wall=time.monotonic(), requests=0)


@events.test_stop.add_listener
def _stop(**_):
    figures = {"cpu_s": time.process_time() - STATE["cpu"], "wall_s": time.monotonic() - STATE["wall"],
               "requests": STATE["requests"]}
    with open(os.environ["BENCH_OUT"], "w") as out:
        json.dump(figures, out)
"""
WRK_SCRIPT = """wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "text/event-stream"
"""


def _fast_roles(folder: Path) -> Path:
    from rolescope.settings import bundled_roles_path

    role = yaml.safe_load((bundled_roles_path() / "sherlock.yaml").read_text(encoding="utf-8"))
    role["inference"]["simulator"].update({"ttft_ms": 2, "tokens_per_second": 5000, "jitter": 0.0})
    folder.mkdir()
    (folder / "sherlock.yaml").write_text(yaml.safe_dump(role), encoding="utf-8")
    return folder


def _traffic(path: Path) -> Path:
    from rolescope.loadtests.traffic_format import OriginalAnswer, TrafficRecord, dump_record

    record = TrafficRecord(
        arrival=0.0,
        session="s_benchmark0",
        turn=0,
        role="sherlock",
        message=str(BODY["message"]),
        stream=True,
        original=OriginalAnswer(status=200, latency_s=0.1, output_tokens=50),
    )
    path.write_text(dump_record(record) + "\n", encoding="utf-8")
    return path


def _locust(kind: str, url: str, users: int, seconds: int, work: Path) -> dict[str, float]:
    locustfile = work / "bench_locustfile.py"
    locustfile.write_text(LOCUSTFILE, encoding="utf-8")
    out = work / f"{kind}.json"
    env = {
        **os.environ,
        "BENCH_KIND": kind,
        "BENCH_BODY": json.dumps(BODY),
        "BENCH_OUT": str(out),
        "ROLESCOPE_LOAD_TRAFFIC": str(_traffic(work / "traffic.jsonl")),
        "ROLESCOPE_LOAD_SPEED": "10000",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(locustfile),
            "--headless",
            "-H",
            url,
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            f"{seconds}s",
            "--only-summary",
            "-L",
            "WARNING",
            "--stop-timeout",
            "2",
            "--exit-code-on-error",
            "0",
        ],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    if not out.exists():
        raise RuntimeError(f"the {kind} Locust run failed:\n{result.stderr[-2000:]}")
    figures: dict[str, float] = json.loads(out.read_text())
    return figures


def _wrk(url: str, connections: int, seconds: int, work: Path) -> float:
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed: run `make system-deps` (Debian package wrk)")
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=json.dumps(BODY)), encoding="utf-8")
    result = subprocess.run(
        [binary, "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "-s", str(script), f"{url}/v1/chat"],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if match is None:
        raise RuntimeError(f"wrk printed no request rate:\n{result.stdout}")
    return float(match.group(1))


def run(quick: bool = False) -> dict[str, float]:
    from rolescope.serving.launcher import launch_service

    seconds = 4 if quick else 10
    users = 10
    with tempfile.TemporaryDirectory(prefix="rolescope-bench-load-") as tmp:
        work = Path(tmp)
        service = launch_service(
            roles_path=_fast_roles(work / "roles"), db_path=work / "bench.db", log_path=work / "service.log"
        )
        try:
            bare = _locust("bare", service.url, users, seconds, work)
            stream = _locust("stream", service.url, users, seconds, work)
            wrk_rps = _wrk(service.url, users, seconds, work)
        finally:
            service.stop()
    bare_cpu = bare["cpu_s"] / max(bare["requests"], 1)
    stream_cpu = stream["cpu_s"] / max(stream["requests"], 1)
    stream_rps = stream["requests"] / stream["wall_s"]
    figures = {
        "bare_cpu_ms_per_request": bare_cpu * 1000,
        "stream_cpu_ms_per_request": stream_cpu * 1000,
        "stream_vs_bare_cpu_ratio": stream_cpu / bare_cpu,
        "locust_worker_rps": stream_rps,
        "wrk_rps": wrk_rps,
        "locust_vs_wrk_rate_ratio": stream_rps / wrk_rps,
    }
    print(
        "load generator: streaming user CPU/request "
        f"{figures['stream_cpu_ms_per_request']:.3f} ms vs bare POST "
        f"{figures['bare_cpu_ms_per_request']:.3f} ms -> ratio {figures['stream_vs_bare_cpu_ratio']:.2f}x "
        "(target <= 1.30)"
    )
    print(
        f"load generator: one Locust process {stream_rps:.0f} req/s vs wrk {wrk_rps:.0f} req/s -> ratio "
        f"{figures['locust_vs_wrk_rate_ratio']:.2f} (target >= 0.70)"
    )
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
