"""Synthetic workloads by distribution: lengths, prefixes, turns and think time, deterministic by seed."""

from __future__ import annotations

import itertools
import random
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from rolescope.errors import ConfigError
from rolescope.loadtests.distributions import LengthDistribution, read_histogram
from rolescope.loadtests.synth_workload import WorkloadOptions, synthesize_workload
from rolescope.loadtests.traffic_format import group_sessions, read_traffic


def _options(**changes: object) -> WorkloadOptions:
    base: dict[str, object] = {
        "input_tokens": LengthDistribution.normal(200, 30),
        "output_tokens": LengthDistribution.normal(120, 20),
        "sessions": 600,
        "seed": 11,
    }
    base.update(changes)
    return WorkloadOptions(**base)  # type: ignore[arg-type]


def test_input_and_output_lengths_have_the_asked_moments() -> None:
    records = synthesize_workload(_options())
    lengths = [len(r.message.split()) for r in records]
    wanted = [r.max_tokens for r in records if r.max_tokens is not None]
    assert len(wanted) == len(records) == len(lengths)
    assert statistics.fmean(lengths) == pytest.approx(200, rel=0.03)
    assert statistics.stdev(lengths) == pytest.approx(30, rel=0.1)
    assert statistics.fmean(wanted) == pytest.approx(120, rel=0.03)
    assert statistics.stdev(wanted) == pytest.approx(20, rel=0.1)
    assert all(r.original.output_tokens == r.max_tokens for r in records)


def test_fixed_lengths_are_exact() -> None:
    records = synthesize_workload(
        _options(input_tokens=LengthDistribution.fixed(64), output_tokens=LengthDistribution.fixed(32))
    )
    assert {len(r.message.split()) for r in records} == {64}
    assert {r.max_tokens for r in records} == {32}


def test_histogram_lengths_follow_the_file(tmp_path: Path) -> None:
    path = tmp_path / "isl.csv"
    path.write_text("tokens,count\n# short and long prompts\n10,3\n100-110,1\n", encoding="utf-8")
    dist = read_histogram(path)
    rng = random.Random(5)
    draws = [dist.sample(rng) for _ in range(8000)]
    share_short = sum(d == 10 for d in draws) / len(draws)
    assert share_short == pytest.approx(0.75, abs=0.02)
    assert all(d == 10 or 100 <= d <= 110 for d in draws)
    long_draws = [d for d in draws if d != 10]
    assert statistics.fmean(long_draws) == pytest.approx(105, abs=0.5)
    assert dist.mean == pytest.approx(0.75 * 10 + 0.25 * 105)


def test_bad_histogram_lines_are_all_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("10,3\nten,4\n20-5,1\n30,-1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_histogram(path)
    message = str(caught.value)
    assert "line 2" in message and "line 3" in message and "line 4" in message
    assert "line 1" not in message


def test_each_role_shares_one_prefix_and_roles_differ() -> None:
    records = synthesize_workload(
        _options(prefix_tokens=50, input_tokens=LengthDistribution.fixed(20), output_tokens=None)
    )
    prefixes: dict[str, set[str]] = {}
    for record in records:
        tokens = record.message.split()
        assert len(tokens) == 70
        prefixes.setdefault(record.role, set()).add(" ".join(tokens[:50]))
    assert all(len(found) == 1 for found in prefixes.values())
    assert len({next(iter(found)) for found in prefixes.values()}) == len(prefixes) == 3
    assert all(r.max_tokens is None for r in records)


def test_turns_and_think_time_follow_their_distributions() -> None:
    records = synthesize_workload(
        _options(
            sessions=800,
            turns=LengthDistribution.normal(5, 1),
            think_time_ms=LengthDistribution.normal(3000, 500, minimum=0),
            output_tokens=LengthDistribution.fixed(40),
        )
    )
    sessions = group_sessions(records)
    turns = [len(t) for t in sessions.values()]
    assert statistics.fmean(turns) == pytest.approx(5, rel=0.05)
    gaps = [
        later.arrival - earlier.arrival - earlier.original.latency_s
        for turns_of in sessions.values()
        for earlier, later in itertools.pairwise(turns_of)
    ]
    assert statistics.fmean(gaps) == pytest.approx(3.0, rel=0.03)
    assert statistics.stdev(gaps) == pytest.approx(0.5, rel=0.1)
    assert all(t.turn == i for turns_of in sessions.values() for i, t in enumerate(turns_of))


def test_same_seed_same_records_other_seed_other_records() -> None:
    one = synthesize_workload(_options(sessions=50, turns=LengthDistribution.normal(3, 1)))
    two = synthesize_workload(_options(sessions=50, turns=LengthDistribution.normal(3, 1)))
    three = synthesize_workload(_options(sessions=50, turns=LengthDistribution.normal(3, 1), seed=12))
    assert one == two
    assert one != three
    assert Counter(r.role for r in one) != Counter() and len(one) > 50


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rolescope.cli", "traffic", "synth", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_writes_the_same_file_for_the_same_seed(tmp_path: Path) -> None:
    args = ["--sessions", "40", "--isl", "128", "--isl-stddev", "16", "--osl", "64", "--prefix-tokens", "100"]
    args += ["--turns-mean", "3", "--turn-delay-mean", "2000", "--seed", "4"]
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert _cli(*args, "--out", str(first)).returncode == 0
    assert _cli(*args, "--out", str(second)).returncode == 0
    assert first.read_bytes() == second.read_bytes()
    records = read_traffic(first)
    assert all(r.max_tokens is not None for r in records)


def test_cli_names_every_bad_option_at_once(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    out = tmp_path / "x"
    result = _cli("--isl", "10", "--isl-histogram", str(missing), "--osl-stddev", "4", "--out", str(out))
    assert result.returncode == 2
    assert "--isl-histogram" in result.stderr + result.stdout
    assert "--osl-stddev needs --osl" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists()
