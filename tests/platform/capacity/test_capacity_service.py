"""`rolescope capacity` against a real role service: the search, early stops, outputs and errors.

Each step is a real Locust run against a real `rolescope serve` child process,
so these tests take tens of seconds each; they keep steps short and the
precision coarse, and judge behaviour (a bracket around a computable truth, a
step that ends early for the stated reason) rather than exact figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from rolescope import helm_assets
from rolescope.bench.capacity_accuracy import erlang_capacity, fixed_time_roles, spec_with_availability
from rolescope.capacity.options import CapacityOptions
from rolescope.capacity.outputs import CAPACITY_FILE, HELM_VALUES_FILE, schema
from rolescope.capacity.run import run_capacity, service_for
from rolescope.capacity.stepplan import error_budget, plan_step
from rolescope.capacity.steps import StepContext, run_step
from rolescope.gate.policy import load_policy
from rolescope.loadtests.runner import free_port
from rolescope.rundir import REPORT_FILE, SAMPLES_FILE, SUMMARY_FILE

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.timeout(400)


def _context(url: str, metrics_url: str | None, out: Path) -> StepContext:
    policy = load_policy()
    return StepContext(
        url=url,
        out=out,
        policy=policy,
        user="chat",
        metrics_url=metrics_url,
        error_budget=error_budget(policy),
    )


def test_a_step_stops_early_once_errors_exceed_the_budget_of_the_whole_step(
    tmp_path: Path, fast_roles_path: Path
) -> None:
    options = CapacityOptions(roles=fast_roles_path, faults={"error_rate": 0.5})
    with service_for(options, tmp_path, lambda _: None) as (url, metrics_url):
        plan = plan_step(10.0, 1000, max_duration_s=40)
        record = run_step(_context(url, metrics_url, tmp_path), 1, plan, "bisect", lambda _: None)
    assert record.early_stop is not None and "chat-availability broken beyond recovery" in record.early_stop
    assert not record.passed and record.conclusive
    assert record.binding == "chat-availability"
    assert record.client["requests_with_warmup"] < plan.planned_requests / 2
    assert (tmp_path / "load-1" / SAMPLES_FILE).exists()


def test_a_step_stops_early_when_in_flight_requests_keep_growing(
    tmp_path: Path, fast_roles_path: Path
) -> None:
    # About 60 ms of CPU per request in one process: it saturates near 15 req/s; 60 are offered.
    options = CapacityOptions(
        roles=fast_roles_path, faults={"cpu_per_token_us": 800}, settings={"concurrency_limit": 0}
    )
    with service_for(options, tmp_path, lambda _: None) as (url, metrics_url):
        plan = plan_step(60.0, 3000, max_duration_s=40)
        record = run_step(_context(url, metrics_url, tmp_path), 1, plan, "probe", lambda _: None)
    assert record.early_stop is not None and record.early_stop.startswith("over-saturated"), record.early_stop
    assert record.binding == "over-saturation"
    assert not record.passed and record.conclusive
    # Ended well before the planned requests were sent (the wall time also holds Locust's start).
    assert record.client["requests_with_warmup"] < plan.planned_requests / 2
    assert record.server is not None and record.server["in_flight_max"] > 20


def test_the_search_brackets_a_known_capacity_and_writes_valid_outputs(tmp_path: Path) -> None:
    # A fixed 100 ms answer and 4 requests at a time: Erlang's loss formula gives the rate at which
    # 10 % are refused, the budget of this spec.
    roles = fixed_time_roles(tmp_path / "roles", 100)
    slo = spec_with_availability(tmp_path / "slo.yaml", 0.90)
    truth = erlang_capacity(4, 0.1, 0.10)
    out = tmp_path / "run"
    options = CapacityOptions(
        out=out,
        roles=roles,
        slo=slo,
        settings={"concurrency_limit": 4},
        precision=0.5,
        start_rate=truth / 2.5,
        min_requests=80,
        probe_requests=25,
        max_step_s=10,
        user="chat",
        target_rate=100.0,
    )
    outcome = run_capacity(options, lambda _: None)
    low, high = outcome.done.bracket.low, outcome.done.bracket.high
    assert outcome.done.reason == "converged", [s.to_dict() for s in outcome.steps]
    assert low is not None and high is not None and high / low - 1 <= 0.5
    # Loose: short steps on a shared machine, judged by a 10 % refusal budget.
    assert truth / 2 < low <= truth * 1.5 and high > truth / 1.5, (low, high, truth)
    assert [s.index for s in outcome.steps] == list(range(1, len(outcome.steps) + 1))
    for step in outcome.steps:
        assert (out / f"load-{step.index}" / SAMPLES_FILE).exists()

    document = json.loads((out / CAPACITY_FILE).read_text())
    jsonschema.validate(document, schema())
    assert document["capacity"]["rate_rps"] == low
    assert document["capacity"]["binding_slo"] in {"chat-availability", "goodput", "inference-timeouts"}
    edge = next(s for s in document["steps"] if s["index"] == document["capacity"]["edge_step"])
    assert edge["server"]["requests"] > 0 and edge["server"]["cpu_seconds"] > 0
    assert "e2e_p50_ms" in edge["server"]["difference"]

    summary = (out / SUMMARY_FILE).read_text()
    assert f"{low:.3g} req/s" in summary and "| # | phase |" in summary
    report = (out / REPORT_FILE).read_text()
    assert report.count("<svg") >= 3 and "capacity" in report

    snippet = yaml.safe_load((out / HELM_VALUES_FILE).read_text())
    redis_case = helm_assets.load_values(helm_assets.values_files(ROOT)["redis"])
    documents = helm_assets.render_documents(ROOT, {**redis_case, **snippet})
    hpa = next(d for d in documents if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] == document["sizing"]["replicas"]


def test_a_schema_violation_is_caught() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"schema_version": 1}, schema())


def test_a_target_where_nothing_listens_is_one_line_and_exit_2(tmp_path: Path) -> None:
    port = free_port()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rolescope",
            "capacity",
            "--target",
            f"http://127.0.0.1:{port}",
            "-o",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nothing answers there" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
