"""`rolescope capacity`: launch (or reach) the service, run the search step by step, write the outputs."""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from rolescope.capacity.options import CapacityOptions
from rolescope.capacity.prometheus_source import prometheus_source
from rolescope.capacity.search import Done, SearchConfig, StepResult, next_step
from rolescope.capacity.span_receiver import SpanReceiver, span_receiver
from rolescope.capacity.stepplan import error_budget, plan_step, requests_needed
from rolescope.capacity.steps import StepContext, StepRecord, run_step
from rolescope.errors import ConfigError, EnvironmentProblem
from rolescope.gate.policy import load_policy
from rolescope.loadtests.load_config import UserKind
from rolescope.loadtests.targets.base import TargetOptions, TurnCall, bearer
from rolescope.loadtests.targets.probe import tls_verify
from rolescope.loadtests.targets.registry import api_key, make_adapter
from rolescope.rundir import SERVICE_LOG

Status = Callable[[str], None]
# Seconds a step costs beyond its load: starting Locust, its reports, the scrapes.
STEP_OVERHEAD_S = 10.0


@dataclass
class CapacityOutcome:
    out: Path
    done: Done
    steps: list[StepRecord]
    document: dict[str, Any]
    files: dict[str, Path]

    @property
    def found(self) -> float | None:
        return self.done.bracket.low


def check_target(url: str, target: TargetOptions | None = None) -> None:
    """One line, exit 2, when nothing answers at `url` (rather than minutes of failed steps)."""
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--target {url!r} must be a URL such as http://127.0.0.1:8080")
    try:
        # Any answer, even a 404 from a service without /healthz, says something listens there.
        httpx.get(url.rstrip("/") + "/healthz", timeout=5, verify=tls_verify(target or TargetOptions()))
    except httpx.HTTPError as exc:
        raise EnvironmentProblem(f"--target {url}: nothing answers there ({type(exc).__name__})") from exc


def metrics_url_of(url: str, target: TargetOptions | None = None) -> str | None:
    """The target's own `/metrics`, when it serves Prometheus text there."""
    candidate = url.rstrip("/") + "/metrics"
    try:
        response = httpx.get(candidate, timeout=5, verify=tls_verify(target or TargetOptions()))
    except httpx.HTTPError:
        return None
    return candidate if response.status_code == 200 and "# TYPE" in response.text else None


def single_request_seconds(
    url: str, user: UserKind, target: TargetOptions | None = None, tries: int = 3
) -> float:
    """Median time of one request on an idle service: the start of the probe is 1 ÷ this."""
    target = target or TargetOptions()
    # A WebSocket target is rolescope's own service, whose /v1/chat answers the same way.
    adapter = make_adapter(target) if target.api not in ("rolescope", "websocket") else None
    role = next(iter(target.role_map.values()), "sherlock")
    times: list[float] = []
    headers = bearer(target.headers, api_key(target))
    with httpx.Client(base_url=url, timeout=60, verify=tls_verify(target), headers=headers) as client:
        for index in range(tries):
            message, stream = f"How long does one answer take? ({index})", user == "stream"
            started = time.monotonic()
            if adapter is None:
                client.post("/v1/chat", json={"message": message, "stream": stream}).read()
            else:
                call = adapter.request(TurnCall(message, role, f"capacity-probe-{index}", stream))
                client.request(call.method, call.path, content=call.body, headers=dict(call.headers)).read()
            times.append(time.monotonic() - started)
    return statistics.median(times)


@contextlib.contextmanager
def service_for(
    options: CapacityOptions, out: Path, status: Status, spans: SpanReceiver | None = None
) -> Iterator[tuple[str, str | None]]:
    """(service URL, its /metrics URL or None) for the whole search; a launched service sends `spans` all."""
    if options.target is not None:
        check_target(options.target, options.target_options)
        url = options.target.rstrip("/")
        yield url, options.metrics_url or metrics_url_of(url, options.target_options)
        return
    from rolescope.loadtests.runner import free_port
    from rolescope.serving.launcher import launch_service
    from rolescope.tune.trial import service_env, warm_up

    # /metrics on its own port is served from a thread, so it still answers when CPU work
    # saturates the event loop, which is exactly when the step needs to see in-flight requests.
    metrics_port = free_port()
    env = {**service_env(options.settings, options.faults), "ROLESCOPE_METRICS_PORT": str(metrics_port)}
    if spans is not None:
        env.update(span_export_env(spans.endpoint))
    with tempfile.TemporaryDirectory(prefix="rolescope-capacity-") as scratch:
        status("starting the role service (simulator, SQLite, fresh database)")
        service = launch_service(
            roles_path=options.roles,
            db_path=Path(scratch) / "capacity.db",
            env=env,
            log_path=out / SERVICE_LOG,
        )
        with service:
            warm_up(service.url)
            yield service.url, f"http://127.0.0.1:{metrics_port}/metrics"


def span_export_env(endpoint: str) -> dict[str, str]:
    """Every span of the launched service to `endpoint`, in batches sent twice a second."""
    return {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_SAMPLER": "always_on",
        "OTEL_BSP_SCHEDULE_DELAY": "500",
    }


def search_config(options: CapacityOptions, start_rate: float) -> SearchConfig:
    try:
        return SearchConfig(
            start_rate=min(max(start_rate, options.min_rate), options.max_rate),
            precision=options.precision,
            min_rate=options.min_rate,
            max_rate=options.max_rate,
            time_budget_s=options.time_budget_s,
        )
    except ValueError as exc:
        raise ConfigError(f"capacity search: {exc}") from exc


def run_capacity(options: CapacityOptions, status: Status) -> CapacityOutcome:
    """Search for the capacity and write capacity.json, summary.md, report.html (and the Helm values)."""
    from rolescope.capacity.outputs import write_outputs

    policy = load_policy(options.slo)  # a broken spec fails before minutes of load, not after
    out = options.output_dir()
    out.mkdir(parents=True, exist_ok=True)
    min_requests = options.min_requests or requests_needed(policy)
    began = time.monotonic()
    records: list[StepRecord] = []
    prometheus = prometheus_source(options.prometheus, options.prometheus_selector)
    with (
        span_receiver(options.join_traces, options.trace_port) as spans,
        service_for(options, out, status, spans) as (url, metrics_url),
    ):
        if spans is not None and options.target is not None:
            status(f"receiving the target's spans at {spans.endpoint} (OTLP/HTTP, sampler always_on)")
        if prometheus is not None:
            status(f"checking Prometheus at {prometheus.url}")
            prometheus.check()
        context = StepContext(
            url=url,
            out=out,
            policy=policy,
            user=options.user,
            traffic=options.traffic,
            metrics_url=metrics_url,
            error_budget=error_budget(policy),
            cpus=options.cpus,
            target=options.target_options,
            timeout_s=options.timeout_s,
            prometheus=prometheus,
            spans=spans,
        )
        start = options.start_rate or 1.0 / max(
            single_request_seconds(url, options.user, options.target_options), 1e-3
        )
        config = search_config(options, start)
        results: list[StepResult] = []
        while True:
            elapsed = time.monotonic() - began
            provisional = next_step(results, config, elapsed)
            if isinstance(provisional, Done):
                done = provisional
                break
            wanted = options.probe_requests if provisional.phase == "probe" else min_requests
            plan = plan_step(
                provisional.rate, wanted, warmup_s=options.warmup_s, max_duration_s=options.max_step_s
            )
            decision = next_step(results, config, elapsed, plan.duration_s + STEP_OVERHEAD_S)
            if isinstance(decision, Done):
                done = decision
                break
            record = run_step(context, len(records) + 1, plan, decision.phase, status)
            records.append(record)
            results.append(
                StepResult(record.offered_rps, record.passed, record.conclusive, record.phase, record.wall_s)
            )
            status(_step_line(record))
        wall = time.monotonic() - began
    document, files = write_outputs(out, options, policy, context, done, records, min_requests, wall)
    return CapacityOutcome(out, done, records, document, files)


def _step_line(record: StepRecord) -> str:
    verdict = "held" if record.passed else f"failed ({record.early_stop or record.binding})"
    client = record.client
    goodput = client.get("goodput")
    figures = f", goodput {100 * goodput:.1f} %" if goodput is not None else ""
    return (
        f"step {record.index} ({record.phase}) {record.offered_rps:.3g} req/s: {verdict}; "
        f"{client.get('requests', 0)} requests{figures}, {record.wall_s:.0f} s"
    )
