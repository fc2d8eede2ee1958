"""The committed memory baseline is a golden file: a fresh `rolescope baseline record` lands on it.

The pure rules run on made-up figures; the last test records for real (the CLI, as a
subprocess, exactly as `make baseline` does) and holds the committed file to it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rolescope.memory.environment import capture_environment
from rolescope.memory.golden import (
    COMMITTED_PATH,
    GOLDEN_TOLERANCE_PCT,
    drifts,
    stale_message,
    stale_reasons,
)
from rolescope.memory.model import Baseline, KindFigures, RepeatFigures, load_baseline

REPO = Path(__file__).resolve().parents[3]


def _figures(allocs: float, size: float) -> KindFigures:
    repeat = RepeatFigures(requests=10, sessions=2, allocations=int(allocs * 10), bytes=int(size * 10),
                           peak_bytes=1_000, retained_bytes=10)
    return KindFigures(requests=10, sessions=2, allocations_per_request=allocs, bytes_per_request=size,
                       peak_bytes=1_000, retained_bytes_per_session=5.0, allocations_spread_pct=0.1,
                       bytes_spread_pct=0.1, repeats=[repeat], top_sites=[])


def _baseline(allocs: float = 5_000, size: float = 1_000_000, *, python: str | None = None,
              kinds: tuple[str, ...] = ("chat", "stream", "all")) -> Baseline:
    env = capture_environment(role_versions={"sherlock": "1.2"}, traffic="t.jsonl", digest="sha256:abc")
    if python is not None:
        env = env.model_copy(update={"python": python})
    return Baseline(recorded_at="2026-01-01T00:00:00Z", repeats=3, warmup=30, environment=env,
                    kinds={kind: _figures(allocs, size) for kind in kinds})


def test_within_the_spread_either_way_is_the_same_baseline() -> None:
    committed = _baseline()
    assert stale_reasons(committed, _baseline(allocs=5_000 * 1.009, size=1_000_000 * 0.992)) == []


def test_more_than_the_spread_either_way_is_stale_and_names_each_figure() -> None:
    committed = _baseline()
    up = drifts(committed, _baseline(allocs=5_000 * 1.02))
    kinds = ("chat", "stream", "all")
    assert {(d.kind, d.figure) for d in up} == {(kind, "allocations_per_request") for kind in kinds}
    assert up[0].change_pct == pytest.approx(2.0)
    # A drop is stale too: the gate would otherwise let a later regression of the same size through.
    down = stale_reasons(committed, _baseline(size=1_000_000 * 0.97))
    assert down[0] == "chat bytes per request: committed 1,000,000.0, fresh 970,000.0 (-3.00 %)"


def test_another_interpreter_or_another_set_of_kinds_is_stale_without_comparing() -> None:
    assert stale_reasons(_baseline(), _baseline(allocs=9_999, python="3.99.0"))[0].startswith(
        "not comparable: Python"
    )
    fewer = _baseline(kinds=("chat", "all"))
    assert stale_reasons(_baseline(), fewer) == ["stream requests measured only in the baseline"]


def test_the_message_says_how_to_rerecord_and_that_the_commit_must_say_why() -> None:
    message = stale_message(["chat allocations per request: committed 1.0, fresh 2.0 (+100.00 %)"])
    assert COMMITTED_PATH in message and "±1 %" in message
    assert "make baseline" in message and f"rolescope baseline record --out {COMMITTED_PATH}" in message
    assert "commit message why" in message


@pytest.mark.slow
def test_the_committed_baseline_matches_a_fresh_recording(tmp_path: Path) -> None:
    fresh_path = tmp_path / "fresh.json"
    result = subprocess.run(
        [sys.executable, "-m", "rolescope", "baseline", "record", "--out", str(fresh_path)],
        capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    committed, fresh = load_baseline(REPO / COMMITTED_PATH), load_baseline(fresh_path)
    reasons = stale_reasons(committed, fresh, GOLDEN_TOLERANCE_PCT)
    assert not reasons, stale_message(reasons)
