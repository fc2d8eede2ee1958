"""Real py-spy against real role services under real Locust runs, and py-spy's failure modes."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from rolescope.errors import EnvironmentProblem
from rolescope.loadtests.runner import LoadOptions, run_load
from rolescope.profiling.collapsed import merge
from rolescope.profiling.compare import compare_profiles
from rolescope.profiling.layers import EVENT_LOOP, FRAMEWORK, INFERENCE, layer_table
from rolescope.profiling.pyspy import explain_failure, find_serving_worker, record_raw
from rolescope.profiling.recorder import load_runs, record
from rolescope.serving.launcher import ServiceProcess, launch_service

PLANTED = "_planted_cpu_work"
SEGMENTS = 8


def _chat_requests_served(url: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    from rolescope.exporters.names import HTTP_REQUESTS_TOTAL

    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == HTTP_REQUESTS_TOTAL and sample.labels.get("route") == "/v1/chat"
    )


def _profile_under_load(service: ServiceProcess, out: Path) -> Path:
    """Locust drives the service while py-spy records it in consecutive one-second segments."""
    load_dir = out / "load"
    options = LoadOptions(host=service.url, out=load_dir, rate=12.0, duration_s=SEGMENTS + 10, user="stream")
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(run_load, options)
        deadline = time.monotonic() + 30
        # Profile only once Locust's users are really sending requests.
        while _chat_requests_served(service.url) < 10:
            assert time.monotonic() < deadline, "Locust sent fewer than 10 requests within 30 s"
            if running.done():
                running.result()
            time.sleep(0.2)
        record(service.pid, SEGMENTS, 100, out / "profile", segments=SEGMENTS, find_worker=True)
        running.result()
    return out / "profile"


@pytest.fixture(scope="module")
def profiles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("profiles")
    with launch_service(db_path=root / "base.db") as base, launch_service(
        db_path=root / "slow.db", env={"ROLESCOPE_FAULT_CPU_PER_TOKEN_US": "400"}
    ) as slow, ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(_profile_under_load, s, root / n) for s, n in ((base, "base"), (slow, "slow"))]
        yield jobs[0].result(), jobs[1].result()


def test_profile_directory_holds_every_artifact(profiles: tuple[Path, Path]) -> None:
    base, _ = profiles
    names = (
        "profile.txt",
        "profile.speedscope.json",
        "flamegraph.svg",
        "functions.json",
        "layers.json",
        "profile.json",
    )
    for name in names:
        assert (base / name).stat().st_size > 0, name
    assert len(list((base / "segments").glob("*.txt"))) == SEGMENTS
    assert "commands/serve.py" in (base / "profile.txt").read_text()  # the service process was sampled


def test_comparison_ranks_the_planted_cpu_function_first(profiles: tuple[Path, Path]) -> None:
    base, slow = profiles
    diff = compare_profiles(load_runs(base), load_runs(slow))
    first = diff.changes[0]
    assert PLANTED in first.function
    assert first.significant and first.direction == "grew"
    assert first.candidate_self_share > first.baseline_self_share


def test_layers_place_the_real_profile_and_name_the_layer_that_grew(profiles: tuple[Path, Path]) -> None:
    base, slow = profiles
    rows = layer_table(merge(load_runs(base)))
    assert {FRAMEWORK, EVENT_LOOP} <= {row.layer for row in rows}
    assert sum(row.share for row in rows) == pytest.approx(1.0)
    written = json.loads((base / "layers.json").read_text())
    assert [row["layer"] for row in written] == [row.layer for row in rows]
    diff = compare_profiles(load_runs(base), load_runs(slow))
    first = diff.layers[0]
    assert (first.layer, first.direction, first.significant) == (INFERENCE, "grew", True)
    assert PLANTED in first.function


def test_profile_compare_cli_writes_the_diff_and_fails_on_growth_when_asked(
    profiles: tuple[Path, Path], tmp_path: Path
) -> None:
    from rolescope.commands import profile

    app = typer.Typer()
    profile.register(app)
    app.command("noop")(lambda: None)
    base, slow = profiles
    result = CliRunner().invoke(
        app,
        ["profile", "compare", str(base), "-c", str(slow), "--out", str(tmp_path), "--fail-on-growth"],
    )
    assert result.exit_code == 1, result.output
    assert PLANTED in (tmp_path / "diff.json").read_text()
    assert "rgb(255," in (tmp_path / "diff_flamegraph.svg").read_text()


def test_profile_cli_starts_a_command_under_py_spy(tmp_path: Path) -> None:
    from rolescope.commands import profile

    script = tmp_path / "busy.py"
    script.write_text(
        "import time\n"
        "def burn_here():\n"
        "    end = time.time() + 1.5\n"
        "    while time.time() < end:\n"
        "        pass\n"
        "burn_here()\n"
    )
    app = typer.Typer()
    profile.register(app)
    app.command("noop")(lambda: None)
    out = tmp_path / "p"
    args = ["profile", "--duration", "5", "--out", str(out), "--", sys.executable, str(script)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "burn_here" in (out / "functions.json").read_text()
    assert "burn_here" in (out / "flamegraph.svg").read_text()


def test_find_serving_worker_picks_the_busy_child() -> None:
    code = (
        "import subprocess, sys, time\n"
        "spin = 'import time\\nt = time.time()\\nwhile time.time() - t < 20: pass'\n"
        "busy = subprocess.Popen([sys.executable, '-c', spin])\n"
        "idle = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(20)'])\n"
        "print(busy.pid, idle.pid, flush=True)\n"
        "busy.wait(); idle.wait()\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        busy, _idle = (int(x) for x in parent.stdout.readline().split())
        assert find_serving_worker(parent.pid) == busy
    finally:
        for pid in _children(parent.pid):
            os.kill(pid, 9)
        parent.kill()
        parent.wait()


def _children(pid: int) -> list[int]:
    from rolescope.profiling.pyspy import children_of

    return children_of(pid)


def test_missing_ptrace_permission_is_explained(tmp_path: Path) -> None:
    """A real py-spy running as `nobody` may not ptrace a root process."""
    setpriv = shutil.which("setpriv")
    real = shutil.which("py-spy")
    if os.geteuid() != 0 or setpriv is None or real is None:
        pytest.skip("needs root and setpriv to run py-spy as an unprivileged user")
    shared = Path(tempfile.mkdtemp(prefix="rolescope-nobody-"))
    try:
        shared.chmod(0o755)
        copy = shared / "py-spy"
        shutil.copy(os.path.realpath(real), copy)
        wrapper = shared / "py-spy-as-nobody"
        drop = f"{setpriv} --reuid 65534 --regid 65534 --clear-groups"
        wrapper.write_text(f'#!/bin/sh\nexec {drop} {copy} "$@"\n')
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            with pytest.raises(EnvironmentProblem, match="SYS_PTRACE"):
                record_raw(tmp_path / "x.txt", pid=target.pid, duration=1, py_spy=str(wrapper))
        finally:
            target.kill()
            target.wait()
    finally:
        shutil.rmtree(shared)


def test_failures_are_one_sentence() -> None:
    assert "check that the process is running" in explain_failure(
        "Error: Failed to get process executable name. Check that the process is running.", "process 1"
    )
    denied = explain_failure("Permission Denied: Try running again with elevated permissions", "pid 3")
    assert denied.startswith("py-spy may not read pid 3")
