"""Real in-process replays under memray: an unchanged rerun passes, the allocation fault fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rolescope.errors import GateFailed
from rolescope.memory.baseline import record_baseline
from rolescope.memory.compare import compare_memory
from rolescope.memory.environment import EnvironmentMismatch
from rolescope.memory.model import Baseline, load_baseline
from rolescope.settings import FaultSettings, Settings

LIMIT, REPEATS, WARMUP = 40, 2, 10


def _record(**faults: int) -> Baseline:
    return record_baseline(
        repeats=REPEATS, warmup=WARMUP, limit=LIMIT, settings=Settings(faults=FaultSettings(**faults))
    )


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return _record()


def test_baseline_has_figures_per_kind_and_its_environment(baseline: Baseline) -> None:
    assert set(baseline.kinds) == {"chat", "stream", "all"}
    every = baseline.kinds["all"]
    assert every.requests == LIMIT
    assert every.requests == baseline.kinds["chat"].requests + baseline.kinds["stream"].requests
    assert every.allocations_per_request > 1000 and every.bytes_per_request > 10_000
    assert every.peak_bytes > 0 and len(every.repeats) == REPEATS
    # Counting allocations is deterministic enough to hold a 5 % line. Repeat-to-repeat spread at
    # 40 requests: 0.2-0.6 % with the simulator's delays as bare yields; when the replay still slept
    # them (10 µs timers), the event loop's wall-clock-dependent iterations spread it to 1-2.6 %.
    assert every.allocations_spread_pct < 2.0
    env = baseline.environment
    assert env.traffic == "sample.jsonl" and env.traffic_digest.startswith("sha256:")
    assert env.traffic_subset.startswith(f"first {LIMIT} of") and env.role_versions["sherlock"]
    assert env.packages["memray"] and env.packages["starlette"]
    assert any("inference/" in s.file or "service/" in s.file for s in every.top_sites)


def test_an_unchanged_rerun_passes(baseline: Baseline) -> None:
    result = compare_memory(baseline, _record())
    assert result.passed, [c for c in result.failures]


def test_ten_percent_more_allocations_fails_and_the_planted_site_is_named(baseline: Baseline) -> None:
    # Calibrate the knob: count what one planted element costs as memray sees it.
    from rolescope.inference.simulator import _planted_allocations
    from rolescope.memory.tracking import tracked

    target = 0.10 * baseline.kinds["all"].allocations_per_request
    guess = round(target / 1.5)
    with tracked() as probe:
        _planted_allocations(guess)
    extra = round(target / (probe.allocations / guess))
    candidate = _record(extra_allocations=extra)
    result = compare_memory(baseline, candidate)
    assert not result.passed
    change = {(c.kind, c.figure): c.change for c in result.checks}
    assert 0.06 < change[("all", "allocations_per_request")] < 0.15  # about +10 %, past the 5 % line
    assert "rolescope/inference/simulator.py" in result.grown_sites[0].site


def test_cli_compare_exits_on_failure_and_refuses_other_environments(
    baseline: Baseline, tmp_path: Path
) -> None:
    from rolescope.commands import baseline as baseline_command

    app = typer.Typer()
    baseline_command.register(app)
    app.command("noop")(lambda: None)
    base_file, bad_file, foreign_file = (tmp_path / f"{n}.json" for n in ("base", "bad", "foreign"))
    baseline.dump(base_file)
    every = baseline.kinds["all"]
    grown = every.model_copy(update={"allocations_per_request": 1.2 * every.allocations_per_request})
    baseline.model_copy(update={"kinds": {**baseline.kinds, "all": grown}}).dump(bad_file)
    env = baseline.environment.model_copy(update={"python": "3.99.0"})
    baseline.model_copy(update={"environment": env}).dump(foreign_file)
    runner = CliRunner()

    report = tmp_path / "r.json"
    ok = runner.invoke(app, ["baseline", "compare", str(base_file), str(base_file), "--json", str(report)])
    assert ok.exit_code == 0, ok.output
    assert json.loads(report.read_text())["passed"] is True

    failed = runner.invoke(app, ["baseline", "compare", str(base_file), str(bad_file)])
    assert isinstance(failed.exception, GateFailed)
    assert "all allocations per request grew +20" in str(failed.exception)

    refused = runner.invoke(app, ["baseline", "compare", str(foreign_file), str(base_file)])
    assert isinstance(refused.exception, EnvironmentMismatch)
    assert refused.exception.exit_code == 2 and "3.99.0" in str(refused.exception)
    assert load_baseline(base_file).kinds["all"].requests == LIMIT
