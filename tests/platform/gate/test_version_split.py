"""One-run A/B: a real service splitting sherlock 1.2 / 1.3, a real `rolescope load`, then the gate."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from rolescope.errors import ConfigError
from rolescope.gate.model import RunData
from rolescope.gate.version_split import split_by_version
from rolescope.loadtests.runner import LoadOptions, run_load
from rolescope.loadtests.traffic_format import OriginalAnswer, TrafficRecord, write_traffic
from rolescope.rundir import RequestSample, read_samples
from rolescope.serving.launcher import ServiceProcess
from rolescope.settings import bundled_roles_path

ServiceFactory = Callable[..., ServiceProcess]


def _sample(start: float, version: str | None, ttft: float = 0.05) -> RequestSample:
    return RequestSample(
        name="stream", kind="stream", intended_start=start, start=start, ok=True, status=200,
        e2e_s=ttft + 0.1, ttft_s=ttft, role_version=version,
    )


def test_a_run_splits_into_time_slices_of_each_version() -> None:
    samples = [_sample(float(t), "1.2" if t % 2 else "1.3") for t in range(80)]
    split = split_by_version([RunData(path="run", samples=samples)], "1.3", slices=8)
    assert split.primary_version == "1.2"
    assert len(split.candidate) == len(split.reference) == 8
    assert all(s.role_version == "1.3" for run in split.candidate for s in run.samples)
    assert sum(len(run.samples) for run in split.reference) == 40
    assert "version 1.3 (40 requests) against version 1.2 (40 requests)" in split.notes[0]


def test_runs_that_cannot_be_split_say_why() -> None:
    run = RunData(path="run", samples=[_sample(1.0, "1.2"), _sample(2.0, "1.2")])
    with pytest.raises(ConfigError) as caught:
        split_by_version([run], "1.3")
    assert "candidate version '1.3' answered no request; versions seen: 1.2 (2 requests)" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        split_by_version([run], "1.2")
    assert "only version '1.2' answered" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        split_by_version([RunData(path="run", samples=[_sample(1.0, None)])], "1.3")
    assert "no request in these runs says which role version answered" in str(caught.value)


def _roles(folder: Path, faults: dict[str, float] | None) -> Path:
    folder.mkdir()
    base = yaml.safe_load((bundled_roles_path() / "sherlock.yaml").read_text(encoding="utf-8"))
    base["inference"]["simulator"].update(ttft_ms=30, tokens_per_second=400, jitter=0.1)
    base["response_constraints"].update(max_tokens=24)
    stable = {**base, "release": {"weights": {"1.2": 50, "1.3": 50}}}
    (folder / "sherlock-1.2.yaml").write_text(yaml.safe_dump(stable), encoding="utf-8")
    canary = {**base, "version": "1.3"}
    if faults:
        canary["inference"] = {**base["inference"], "faults": faults}
    (folder / "sherlock-1.3.yaml").write_text(yaml.safe_dump(canary), encoding="utf-8")
    return folder


def _traffic(path: Path) -> Path:
    records = [
        TrafficRecord(
            arrival=1000.0 + 0.1 * session + 1.5 * turn,
            session=f"s{session}",
            turn=turn,
            role="sherlock",
            message=f"turn {turn}: whose boot left this mark?",
            stream=True,
            original=OriginalAnswer(status=200, latency_s=0.3, output_tokens=20),
        )
        for session in range(100)
        for turn in range(2)
    ]
    with path.open("w", encoding="utf-8") as out:
        write_traffic(records, out)
    return path


def _load_and_gate(tmp_path: Path, service_factory: ServiceFactory, faults: dict[str, float] | None) -> tuple[
    subprocess.CompletedProcess[str], list[RequestSample], Path
]:
    service = service_factory(roles_path=_roles(tmp_path / "roles", faults))
    run = run_load(
        LoadOptions(
            host=service.url, out=tmp_path / "run", traffic=_traffic(tmp_path / "traffic.jsonl"),
            users=40, spawn_rate=80, duration_s=16,
        )
    )
    out = tmp_path / "verdict"
    # The versions against each other only: a busy machine may miss absolute SLOs on both alike.
    bundled = yaml.safe_load((Path(__file__).parents[3] / "alerts" / "slo.yaml").read_text(encoding="utf-8"))
    bundled["slos"] = [slo for slo in bundled["slos"] if slo["name"] == "chat-availability"]
    bundled["gate"]["relative_tolerance"] = {"ttft_p95": 0.1, "e2e_p95": 0.1, "tpot_p95": 0.1}
    spec = tmp_path / "slo.yaml"
    spec.write_text(yaml.safe_dump(bundled), encoding="utf-8")
    gate = subprocess.run(
        [sys.executable, "-m", "rolescope.cli", "gate", str(run), "--split-by-version", "1.3",
         "--slo", str(spec), "--out", str(out)],
        capture_output=True, text=True, timeout=240,
    )
    return gate, read_samples(run / "samples.jsonl"), out


def test_the_gate_catches_a_fault_planted_on_the_candidate_version_only(
    tmp_path: Path, service_factory: ServiceFactory
) -> None:
    gate, samples, out = _load_and_gate(tmp_path, service_factory, {"added_latency_ms": 800})
    answered = Counter(s.role_version for s in samples)
    assert answered["1.2"] > 50 and answered["1.3"] > 50, answered
    slow = sorted(s.ttft_s for s in samples if s.role_version == "1.3" and s.ttft_s is not None)
    fast = sorted(s.ttft_s for s in samples if s.role_version == "1.2" and s.ttft_s is not None)
    assert slow[0] > 0.8  # the fault is on 1.3's requests, and not on 1.2's
    assert slow[len(slow) // 2] - fast[len(fast) // 2] > 0.6
    assert gate.returncode == 1, gate.stdout + gate.stderr
    verdict = json.loads((out / "verdict.json").read_text())
    messages = [check["message"] for check in verdict["checks"]]
    assert "ab:ttft_p95@1.3" in verdict["failed"], messages
    text = " ".join((gate.stdout + gate.stderr).split())
    assert "ab:ttft_p95@1.3" in text and "version 1.3" in text


def test_the_same_version_twice_passes(tmp_path: Path, service_factory: ServiceFactory) -> None:
    gate, samples, out = _load_and_gate(tmp_path, service_factory, None)
    assert {s.role_version for s in samples} == {"1.2", "1.3"}
    verdict = json.loads((out / "verdict.json").read_text())
    messages = [check["message"] for check in verdict["checks"]]
    assert not [name for name in verdict["failed"] if name.startswith("ab:")], messages
    assert gate.returncode == 0, gate.stdout + gate.stderr
