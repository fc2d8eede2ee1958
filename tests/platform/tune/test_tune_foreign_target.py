"""`rolescope tune` and `rolescope gate` against an OpenAI-compatible service that is not rolescope.

The service is the known-timing Starlette app of the target tests, run as its
own Python process on a free loopback port, so `--pid` has a real process to
profile. Without `--pid` only the client side can be measured, and the report
must say what was not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from rolescope.loadtests.runner import free_port

TARGET_TESTS = Path(__file__).resolve().parents[2] / "loadtests" / "targets"
sys.path.insert(0, str(TARGET_TESTS))
from conftest import API_KEY, MODEL, write_sessions  # noqa: E402

sys.path.remove(str(TARGET_TESTS))

SERVER = f"""
import sys
sys.path.insert(0, {str(TARGET_TESTS)!r})
import uvicorn
from conftest import ForeignService, foreign_app
uvicorn.run(foreign_app(ForeignService(url="")), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@dataclass
class ForeignProcess:
    url: str
    pid: int


@pytest.fixture(scope="module")
def foreign_process() -> Iterator[ForeignProcess]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/v1/models", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        yield ForeignProcess(url, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _tune(foreign: ForeignProcess, out: Path, traffic: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        *(sys.executable, "-m", "rolescope", "tune", "--quick", "--out", str(out)),
        *("--target", foreign.url, "--api", "openai", "--model", MODEL, "--api-key-env", "FOREIGN_KEY"),
        *("--runs", "2", "--duration", "3", "--users", "4", "--speed", "50", "--traffic", str(traffic)),
        *extra,
    ]
    env = {**os.environ, "FOREIGN_KEY": API_KEY}
    return subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)


@pytest.fixture
def traffic(tmp_path: Path) -> Path:
    sessions = {f"s{n}": [f"hello number {n}", "and then?", "tell me more"] for n in range(40)}
    return write_sessions(tmp_path / "traffic.jsonl", sessions)


def _measurements(out: Path) -> dict[str, dict[str, object]]:
    verdict = json.loads((out / "verdict.json").read_text())
    return {m["kind"]: m for m in verdict["measurements"]}


def test_tune_on_a_foreign_openai_service_ends_in_a_verdict(
    foreign_process: ForeignProcess, traffic: Path, tmp_path: Path
) -> None:
    out = tmp_path / "tune"
    result = _tune(foreign_process, out, traffic)
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-3000:]
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["checks"], verdict
    # The client side is measured against the known truth: never under 150 ms to the first token
    # (the upper bound is loose: the machine running the tests may be busy).
    ttft = sorted(s["ttft_s"] for s in map(json.loads, (out / "load-1/samples.jsonl").open()) if s["ok"])
    assert ttft and ttft[0] > 0.145 and ttft[len(ttft) // 2] < 3.0
    measured = _measurements(out)
    assert not measured["profile"]["measured"] and "--pid" in str(measured["profile"]["detail"])
    assert not measured["memory"]["measured"]
    assert not measured["server-side metrics"]["measured"]
    assert not (out / "profile").exists() and not (out / "memory.json").exists()
    report = (out / "report.html").read_text()
    summary = (out / "summary.md").read_text()
    assert "not measured" in report and "not measured" in summary
    assert "without --pid" in report and "without --pid" in summary

    # The same directories judged by `rolescope gate`, A/B against themselves: still a verdict,
    # the missing profile and memory figures left out rather than failed.
    gate_out = tmp_path / "gate"
    gate_command = [sys.executable, "-m", "rolescope", "gate", str(out), "--reference", str(out)]
    gate = subprocess.run(
        [*gate_command, "--out", str(gate_out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert gate.returncode in (0, 1), gate.stdout[-3000:] + gate.stderr[-3000:]
    gated = json.loads((gate_out / "verdict.json").read_text())
    assert not any(name.startswith("memory:") for name in gated["failed"])
    assert "ab:cpu_per_token_ms" not in {c["name"] for c in gated["checks"]}
    assert any(c["kind"] == "relative" for c in gated["checks"])
    assert "without --pid" in (gate_out / "summary.md").read_text()


def test_tune_with_the_pid_of_a_python_target_profiles_it(
    foreign_process: ForeignProcess, traffic: Path, tmp_path: Path
) -> None:
    out = tmp_path / "tune"
    result = _tune(foreign_process, out, traffic, "--pid", str(foreign_process.pid))
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-3000:]
    measured = _measurements(out)
    assert measured["profile"]["measured"], measured["profile"]
    assert measured["server-side metrics"]["measured"], measured
    assert not measured["memory"]["measured"]
    assert list((out / "profile").glob("**/functions.json"))
    service = json.loads((out / "load-1/service.json").read_text())
    assert service["pid"] == foreign_process.pid and service["cpu_seconds"] > 0


def test_tune_options_for_a_target_are_checked_together(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "rolescope", "tune", "--out", str(tmp_path / "x")),
            *("--api", "openai", "--model", "m", "--pid", "1"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--pid only makes sense with --target" in result.stderr
    assert "need --target URL" in result.stderr


def test_tune_checks_the_target_before_any_load(foreign_process: ForeignProcess, tmp_path: Path) -> None:
    # The bundled traffic names roles; the foreign service serves one model of another name.
    out = tmp_path / "tune"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "rolescope", "tune", "--quick", "--out", str(out)),
            *("--target", foreign_process.url, "--api", "openai", "--api-key-env", "FOREIGN_KEY"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FOREIGN_KEY": API_KEY},
    )
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    assert "models not served" in result.stdout and "--target-roles" in result.stdout
    assert not (out / "load-1").exists()
