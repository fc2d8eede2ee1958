"""One step of the capacity search: an open-model `rolescope load` run at one arrival rate, judged.

The step is a normal load run (`load-N/` with the usual contents) at a Poisson
rate; latency counts from each request's intended send time, so a slow
service cannot lower the load it is offered. While it runs, the service's own
`/metrics` is scraped about twice a second: its failure count and in-flight
requests decide whether the outcome is already certain (see `stepplan`), and
the snapshots at start and end give the server-side figures of the step.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rolescope.capacity.prometheus_source import PrometheusSource
from rolescope.capacity.search import Phase
from rolescope.capacity.server_metrics import Snapshot, scrape, server_figures
from rolescope.capacity.span_receiver import SpanReceiver
from rolescope.capacity.stepplan import StepPlan, StepSoFar, pool_cover_s, stop_reason, with_spawn_allowance
from rolescope.gate.absolute import absolute_checks
from rolescope.gate.goodput import good_requests
from rolescope.gate.model import CheckResult, GatePolicy, RunData
from rolescope.loadtests.load_config import UserKind
from rolescope.loadtests.slis import distribution
from rolescope.loadtests.targets.base import TargetOptions
from rolescope.loadtests.targets.probe import tls_verify
from rolescope.rundir import SAMPLES_FILE, RequestSample, load_dir_name, read_samples

Status = Callable[[str], None]
SCRAPE_EVERY_S = 0.5
# Locust's run time starts before its users send anything (start-up, reading the traffic, spawning:
# seconds on a loaded machine). With the service's metrics in view, the step is timed from the first
# request the service sees instead, and Locust's own limit only bounds a start-up gone wrong.
STARTUP_ALLOWANCE_S = 30.0
SETTLE_AFTER_ANSWERS = 5
STEP_FILE = "step.json"


class _StepComplete(Exception):
    """Raised from the progress callback once the step has offered load for its planned duration."""


class _StepDecided(Exception):
    """Raised from the load run's progress callback to end a step whose outcome is certain."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class StepContext:
    """Everything every step shares: where to send load, what to judge it by."""

    url: str
    out: Path
    policy: GatePolicy
    user: UserKind = "replay"
    traffic: Path | None = None
    metrics_url: str | None = None
    error_budget: tuple[str, float] | None = None
    cpus: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    target: TargetOptions = field(default_factory=TargetOptions)  # protocol, headers, TLS, roles
    timeout_s: float = 60.0  # of one request
    prometheus: PrometheusSource | None = None  # read the server figures there instead of from /metrics
    spans: SpanReceiver | None = None  # the service's spans: its TTFT per trace id


@dataclass
class StepRecord:
    index: int
    phase: Phase
    offered_rps: float
    planned_duration_s: float
    warmup_s: float
    long_enough: bool
    passed: bool
    conclusive: bool
    early_stop: str | None
    binding: str | None  # the first SLO that failed (the step's verdict)
    wall_s: float
    client: dict[str, Any]
    server: dict[str, Any] | None
    checks: list[dict[str, Any]]
    trace_join: dict[str, Any] | None = None  # client − server TTFT per request, joined by trace id

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else 1000 * seconds


def client_figures(samples: list[RequestSample], all_samples: int, policy: GatePolicy) -> dict[str, Any]:
    """Client-side figures of the judged samples (warm-up excluded)."""
    if not samples:
        return {"requests": 0, "requests_with_warmup": all_samples}
    first = min(s.intended_start for s in samples)
    last_sent = max(s.intended_start for s in samples)
    last_done = max(s.intended_start + s.e2e_s for s in samples)
    sent_span = max(last_sent - first, 1e-9)
    ok = [s for s in samples if s.ok]
    good = good_requests(samples, policy.latency_objectives)
    figures: dict[str, Any] = {
        "requests": len(samples),
        "requests_with_warmup": all_samples,
        "offered_rps_measured": len(samples) / sent_span,
        "throughput_rps": len(ok) / max(last_done - first, 1e-9),
        "goodput": good / len(samples),
        "goodput_rps": good / max(last_done - first, 1e-9),
        "error_ratio": 1 - len(ok) / len(samples),
    }
    for metric, values in (
        ("ttft_s", [s.ttft_s for s in ok if s.ttft_s is not None]),
        ("tpot_s", [s.tpot_s for s in ok if s.tpot_s is not None]),
        ("e2e_s", [s.e2e_s for s in ok]),
    ):
        figures[metric] = distribution(values).to_dict()
    return figures


def judged_samples(samples: list[RequestSample], warmup_s: float) -> list[RequestSample]:
    if not samples:
        return []
    first = min(s.intended_start for s in samples)
    return [s for s in samples if s.intended_start >= first + warmup_s]


def judged_window(samples: list[RequestSample]) -> tuple[float, float]:
    """From the first judged request's intended send time to the last answer's end (unix seconds)."""
    return min(s.intended_start for s in samples), max(s.intended_start + s.e2e_s for s in samples)


def _difference(client: dict[str, Any], server: dict[str, Any] | None) -> dict[str, float | None]:
    """Client minus server, in ms: network, queueing before the handler and the client itself."""
    if server is None or not client.get("requests"):
        return {}
    found: dict[str, float | None] = {}
    for name, client_key, server_key in (
        ("ttft", "ttft_s", "ttft_s"),
        ("e2e", "e2e_s", "http_duration_s"),
    ):
        for q in ("p50", "p95", "p99"):
            c, s = client[client_key].get(q), server[server_key].get(q)
            if client[client_key].get("count") and c is not None and s is not None:
                found[f"{name}_{q}_ms"] = _ms(c - s)
    return found


class _Monitor:
    """The load run's progress callback: scrapes the service and ends the step once it is decided.

    Failures count from the end of the warm-up, as the judgement does: the first sends of a
    load process can bunch up while its users start, and refusals of that burst say nothing
    about the rate.
    """

    def __init__(
        self, context: StepContext, plan: StepPlan, start: Snapshot | None, label: str, status: Status
    ):
        self.context, self.plan, self.start, self.label, self.status = context, plan, start, label, status
        self.began = time.monotonic()
        self.in_flight: list[tuple[float, float]] = []
        self.completed: list[tuple[float, float]] = []
        self.first_request_at: float | None = None
        self.judged_from: Snapshot | None = None
        self.settle_s: float | None = None
        self.last: Snapshot | None = None
        self._last_scrape = 0.0
        self.verify = tls_verify(context.target)

    def __call__(self, elapsed: float, samples: int) -> None:
        self.status(f"{self.label}: {min(elapsed, self.plan.duration_s):.0f}/{self.plan.duration_s:.0f} s")
        now = time.monotonic()
        # Timed by the clock, not by the scrapes: a saturated service may answer /metrics late or not at all.
        if (
            self.first_request_at is not None
            and now - self.began >= self.first_request_at + self.plan.duration_s
        ):
            raise _StepComplete
        if self.context.metrics_url is None or self.start is None or now - self._last_scrape < SCRAPE_EVERY_S:
            return
        self._last_scrape = now
        snapshot = scrape(self.context.metrics_url, verify=self.verify)
        if snapshot is None:
            return
        at = snapshot.at - self.began
        self.in_flight.append((at, snapshot.in_flight))
        self.completed.append((at, snapshot.chat_requests - self.start.chat_requests))
        self.last = snapshot
        if self.first_request_at is None:
            if snapshot.chat_requests - self.start.chat_requests <= 0 and snapshot.in_flight <= 0:
                return
            self.first_request_at = at
        if at >= self.first_request_at + self.plan.duration_s:
            raise _StepComplete
        if self.judged_from is None:
            if at < self.first_request_at + self.plan.warmup_s:
                return
            self.judged_from = snapshot
        figures = server_figures(self.judged_from, snapshot)
        if self.settle_s is None:
            since_start = server_figures(self.start, snapshot)
            if since_start["requests"] < SETTLE_AFTER_ANSWERS:
                return
            # The time the first answers took, frozen: once the service saturates, the mean of later
            # answers grows with the queue and would push the judgement window out of the step.
            mean_duration = since_start["request_duration_s"]["mean"] or 0.0
            self.settle_s = self.first_request_at + self.plan.warmup_s + mean_duration
        settle = self.settle_s
        so_far = StepSoFar(
            at,
            int(figures["requests"]),
            int(figures["failures"]),
            self.in_flight,
            settle_s=settle,
            completed=self.completed,
        )
        reason = stop_reason(so_far, self.plan, self.context.error_budget)
        if reason is not None:
            raise _StepDecided(reason)


def run_step(context: StepContext, index: int, plan: StepPlan, phase: Phase, status: Status) -> StepRecord:
    """Run one step into `load-<index>/`, judge it against every SLO, and write its `step.json`."""
    from rolescope.loadtests.runner import LoadOptions, run_load, write_slis

    out = context.out / load_dir_name(index)
    if out.exists():
        shutil.rmtree(out)
    verify = tls_verify(context.target)
    start = scrape(context.metrics_url, verify=verify) if context.metrics_url else None
    options = LoadOptions(
        host=context.url,
        out=out,
        traffic=context.traffic,
        rate=plan.rate,
        arrival="poisson",
        duration_s=plan.duration_s,
        user=context.user,
        seed=index,
        cpus=context.cpus,
        extra_env=dict(context.extra_env),
        open_pool_cover_s=pool_cover_s(context.policy),
        target=context.target,
        timeout_s=context.timeout_s,
    )
    plan = with_spawn_allowance(plan, options.effective_users())
    options.duration_s = plan.duration_s + (STARTUP_ALLOWANCE_S if start is not None else 0.0)
    label = f"step {index} ({phase}) at {plan.rate:.3g} req/s"
    monitor = _Monitor(context, plan, start, label, status)
    began = time.monotonic()
    early_stop: str | None = None
    try:
        run_load(options, progress=monitor)
    except _StepComplete:
        write_slis(out)
    except _StepDecided as decided:
        early_stop = decided.reason
        write_slis(out)
    end = scrape(context.metrics_url, verify=verify) if context.metrics_url else None
    wall = time.monotonic() - began
    samples_path = out / SAMPLES_FILE
    everything = read_samples(samples_path) if samples_path.exists() else []
    samples = judged_samples(everything, plan.warmup_s)
    checks = applicable_checks(context.policy, samples, out)
    failed = [c for c in checks if not c.passed]
    passed = early_stop is None and bool(samples) and not failed
    binding = _binding(early_stop, failed, context.error_budget)
    client = client_figures(samples, len(everything), context.policy)
    # Server figures over the judged window, as the client's: from the end of the warm-up to the
    # last scrape of the load (not Locust's start-up and shut-down, which would dilute rates and CPU).
    first = monitor.judged_from or start
    last = monitor.last if monitor.judged_from is not None and monitor.last is not None else end
    since = first.at - monitor.began if first is not None else 0.0
    peak = [y for t, y in monitor.in_flight if t >= since]
    server = server_figures(first, last, peak) if first and last else None
    if context.prometheus is not None and samples:
        server = context.prometheus.figures(judged_window(samples))
    if server is not None:
        server["difference"] = _difference(client, server)
    record = StepRecord(
        index=index,
        phase=phase,
        offered_rps=plan.rate,
        planned_duration_s=plan.duration_s,
        warmup_s=plan.warmup_s,
        long_enough=plan.long_enough,
        passed=passed,
        conclusive=phase != "probe" or early_stop is not None,
        early_stop=early_stop,
        binding=binding,
        wall_s=wall,
        client=client,
        server=server,
        checks=[
            {"name": c.name, "figure": c.figure, "limit": c.limit, "passed": c.passed, "message": c.message}
            for c in checks
        ],
        trace_join=context.spans.join(samples) if context.spans is not None else None,
    )
    (out / STEP_FILE).write_text(json.dumps(record.to_dict(), indent=2))
    return record


def applicable_checks(policy: GatePolicy, samples: list[RequestSample], out: Path) -> list[CheckResult]:
    """Every SLO check of the step, except latency objectives no request of this traffic is judged by
    (TTFT when every reply was sent in one piece): those cannot hold or break here."""
    checks = absolute_checks(policy.objectives, [RunData(str(out), samples)])
    latency = {o.name for o in policy.objectives if o.sli == "latency"}
    return [c for c in checks if not (c.name in latency and samples and c.statistics.get("requests") == 0)]


def _binding(early_stop: str | None, failed: list[Any], budget: tuple[str, float] | None) -> str | None:
    if early_stop is not None:
        if early_stop.startswith("over-saturated"):
            return "over-saturation"
        return budget[0] if budget is not None else "error budget"
    if failed:
        # The check furthest past its limit, relative to its own budget, is what binds.
        def shortfall(check: Any) -> float:
            budget_share = max(1 - check.limit, 1e-6) if check.direction == "min" else max(check.limit, 1e-6)
            return float(-check.margin / budget_share)

        return str(max(failed, key=shortfall).name)
    return None
