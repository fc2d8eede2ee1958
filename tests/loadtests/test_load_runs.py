"""Real short Locust runs (child processes) against a real role service on loopback."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from rolescope.loadtests.runner import LoadOptions, run_load
from rolescope.loadtests.synth import SynthOptions, synthesize
from rolescope.loadtests.traffic_format import OriginalAnswer, TrafficRecord, write_traffic
from rolescope.rundir import RequestSample, read_samples
from rolescope.settings import bundled_roles_path
from tests.conftest import ServiceFactory


def _write_traffic(path: Path, records: list[TrafficRecord]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        write_traffic(records, out)
    return path


def _record(session: str, turn: int, arrival: float, message: str, stream: bool) -> TrafficRecord:
    """One sherlock request whose original answer took 0.5 s and 20 tokens."""
    return TrafficRecord(
        arrival=arrival, session=session, turn=turn, role="sherlock", message=message, stream=stream,
        original=OriginalAnswer(status=200, latency_s=0.5, output_tokens=20),
    )


def _replayed(host: str, tmp_path: Path, traffic: list[TrafficRecord] | Path, **options: Any) -> Path:
    """A load run replaying `traffic` (records are written to a file first); returns its directory."""
    if isinstance(traffic, list):
        traffic = _write_traffic(tmp_path / "t.jsonl", traffic)
    return run_load(LoadOptions(host=host, out=tmp_path / "run", traffic=traffic, **options))


def _samples(run_dir: Path) -> list[RequestSample]:
    return list(read_samples(run_dir / "samples.jsonl"))


def _fast_role(folder: Path, ttft_ms: int) -> Path:
    """Sherlock with a fixed, jitter-free time to first token and quick tokens."""
    role = yaml.safe_load((bundled_roles_path() / "sherlock.yaml").read_text(encoding="utf-8"))
    role["inference"]["simulator"].update({"ttft_ms": ttft_ms, "jitter": 0.0, "tokens_per_second": 400})
    folder.mkdir()
    (folder / "sherlock.yaml").write_text(yaml.safe_dump(role), encoding="utf-8")
    return folder


def test_replay_keeps_turn_order_and_scaled_gaps(tmp_path: Path, service_factory: ServiceFactory) -> None:
    svc = service_factory(roles_path=_fast_role(tmp_path / "roles", ttft_ms=20))
    records = [
        _record(f"s_order{s}", turn, 1000.0 + 4.0 * turn + 0.3 * s, f"turn {turn} of {s}", stream=bool(s))
        for s in range(2)
        for turn in range(3)
    ]
    run = _replayed(svc.url, tmp_path, records, users=2, spawn_rate=10, speed=2.0, duration_s=7)
    by_session: dict[str, list[RequestSample]] = defaultdict(list)
    for sample in sorted(_samples(run), key=lambda s: s.start):
        by_session[sample.session].append(sample)
    assert set(by_session) == {"s_order0", "s_order1"}
    for turns in by_session.values():
        first_pass = turns[:3]
        assert [t.turn for t in first_pass] == [0, 1, 2]
        assert all(t.ok for t in first_pass)
        for earlier, later in itertools.pairwise(first_pass):
            assert later.intended_start - earlier.intended_start == pytest.approx(2.0, abs=1e-6)
            previous_end = earlier.start + earlier.e2e_s
            assert later.start >= previous_end and later.start >= later.intended_start
            # Sent when it was due (or as soon as the previous answer came), not later.
            assert later.start - max(later.intended_start, previous_end) < 0.5


def test_open_model_holds_its_rate_while_the_service_is_slow(
    tmp_path: Path, service_factory: ServiceFactory
) -> None:
    svc = service_factory(env={"ROLESCOPE_FAULT_ADDED_LATENCY_MS": "400"})
    rate = 20.0
    run = run_load(
        LoadOptions(
            host=svc.url, out=tmp_path / "run", rate=rate, arrival="constant", user="chat", duration_s=5
        )
)
    samples = sorted(_samples(run), key=lambda s: s.start)
    assert len(samples) >= 60
    assert all(s.ok for s in samples)
    assert min(s.e2e_s for s in samples) >= 0.4  # the fault was in force
    achieved = (len(samples) - 1) / (samples[-1].start - samples[0].start)
    assert achieved == pytest.approx(rate, rel=0.05)
    # Latency counts from the intended send time, so any sending delay is inside it.
    for sample in samples:
        assert sample.e2e_s >= sample.start - sample.intended_start
    slis = json.loads((run / "slis.json").read_text())
    assert slis["requests"] == len(samples) and slis["e2e_s"]["p50"] >= 0.4


def test_load_and_gate_count_the_same_goodput_on_a_mixed_run(
    tmp_path: Path, service_factory: ServiceFactory
) -> None:
    from rolescope.gate.collect import collect
    from rolescope.gate.outputs import judge_collected
    from rolescope.gate.policy import load_policy

    # Every first token comes 0.7 s late: streams miss the 0.5 s TTFT objective, one-piece
    # answers (no first token to judge) arrive well within the 5 s end-to-end objective.
    svc = service_factory(
        roles_path=_fast_role(tmp_path / "roles", ttft_ms=20), env={"ROLESCOPE_FAULT_ADDED_LATENCY_MS": "700"}
    )
    records = [_record(f"s_mixed{s}", 0, 1000.0 + s, f"question {s}", stream=bool(s % 2)) for s in range(8)]
    run = _replayed(svc.url, tmp_path, records, users=4, spawn_rate=10, speed=20.0, duration_s=4)
    samples = _samples(run)
    answered = [s for s in samples if s.ok and not s.streamed]
    assert answered and any(s.streamed for s in samples)
    assert all(s.e2e_s > 0.5 for s in answered)  # the TTFT threshold would have failed them
    load_goodput = json.loads((run / "slis.json").read_text())["goodput"]
    verdict = judge_collected(load_policy(), collect([run]))
    gate_goodput = next(c.figure for c in verdict.checks if c.name == "goodput")
    assert load_goodput == pytest.approx(gate_goodput)
    assert load_goodput == pytest.approx(len(answered) / len(samples))


def test_client_ttft_is_at_least_the_simulated_ttft_and_below_end_to_end(
    tmp_path: Path, service_factory: ServiceFactory
) -> None:
    svc = service_factory(roles_path=_fast_role(tmp_path / "roles", ttft_ms=150))
    traffic = _write_traffic(
        tmp_path / "t.jsonl", synthesize(SynthOptions(sessions=10, seed=4, roles=("sherlock",)))
    )
    run = _replayed(svc.url, tmp_path, traffic, user="stream", users=4, speed=100.0, duration_s=3)
    samples = _samples(run)
    assert samples and all(s.ok and s.kind == "stream" for s in samples)
    for sample in samples:
        assert sample.ttft_s is not None and sample.tpot_s is not None
        assert 0.150 <= sample.ttft_s < sample.e2e_s
        assert len(sample.itl_s) >= 1
    # The service really streams; a starved client can still read a backlog in one go now and then.
    assert sum(s.all_at_once for s in samples) < len(samples) / 2
    for name in (
        "settings.json",
        "environment.json",
        "locust_stats.json",
        "locust_stats.csv",
        "locust_report.html",
        "slis.json",
    ):
        assert (run / name).is_file(), name


def test_two_process_run_splits_sessions_and_gathers_every_sample(
    tmp_path: Path, service_factory: ServiceFactory
) -> None:
    svc = service_factory(roles_path=_fast_role(tmp_path / "roles", ttft_ms=20))
    traffic = _write_traffic(
        tmp_path / "t.jsonl", synthesize(SynthOptions(sessions=40, seed=9, roles=("sherlock",)))
    )
    run = _replayed(svc.url, tmp_path, traffic, users=4, speed=200.0, duration_s=4, processes=2)
    samples = _samples(run)
    assert {s.process for s in samples} == {0, 1}
    sessions_by_process: dict[int, set[str]] = defaultdict(set)
    for sample in samples:
        sessions_by_process[sample.process].add(sample.session)
    assert not sessions_by_process[0] & sessions_by_process[1]
    stats = json.loads((run / "locust_stats.json").read_text())
    assert sum(entry["num_requests"] for entry in stats) == len(samples)
    assert all(s.ok for s in samples)


def test_malformed_traffic_is_refused_before_locust_starts(tmp_path: Path) -> None:
    from rolescope.errors import ConfigError

    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"arrival": 1, "session": "s", "turn": 0, "role": "x", "message": "m"}\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="line 1: field `original`"):
        run_load(LoadOptions(host="http://127.0.0.1:9", out=tmp_path / "run", traffic=bad, duration_s=1))


def test_load_sends_the_api_key_a_protected_service_needs(
    tmp_path: Path, service_factory: ServiceFactory, fast_roles_path: Path
) -> None:
    import httpx

    svc = service_factory(roles_path=fast_roles_path, env={"ROLESCOPE_API_KEYS": "load-key-0123456789"})
    anonymous = httpx.post(f"{svc.url}/v1/chat", json={"message": "hello"}, timeout=10)
    assert anonymous.status_code == 401
    run = run_load(
        LoadOptions(
            host=svc.url,
            out=tmp_path / "run",
            users=2,
            spawn_rate=10,
            speed=50.0,
            duration_s=3,
            extra_env={"ROLESCOPE_LOAD_API_KEY": "load-key-0123456789"},
        )
    )
    samples = _samples(run)
    assert samples, "the run sent no request"
    assert all(s.ok and s.status == 200 for s in samples), [s.error for s in samples if not s.ok][:3]


def test_pinned_load_runs_its_locust_processes_on_the_chosen_cpus(
    tmp_path: Path, service_factory: ServiceFactory
) -> None:
    from rolescope.loadtests.runner import _locust_commands

    options = LoadOptions(host="http://127.0.0.1:9", out=tmp_path / "x", cpus="0", processes=2)
    for command in _locust_commands(options, tmp_path):
        assert command[1:3] == ["--cpu-list", "0"] and command[0].endswith("taskset")
    svc = service_factory()
    run = run_load(
        LoadOptions(host=svc.url, out=tmp_path / "run", rate=10, user="chat", duration_s=2, cpus="0")
)
    samples = _samples(run)
    assert samples and all(s.ok for s in samples)


@pytest.mark.parametrize(
    ("cpus", "message"),
    [
        ("9999", "names CPUs this machine does not offer"),
        ("0-x", "is not a CPU list"),
        ("", "is not a CPU list"),
    ],
)
def test_a_bad_cpu_list_is_refused_before_locust_starts(tmp_path: Path, cpus: str, message: str) -> None:
    from rolescope.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        run_load(LoadOptions(host="http://127.0.0.1:9", out=tmp_path / "run", duration_s=1, cpus=cpus))
