"""Overload: open-model arrivals at twice the measured capacity, against the admission limit.

    python -m rolescope.reliability.overload                       # both profiles, ~2 minutes
    python -m rolescope.reliability.overload --profile cpu-bound --seconds 30 --json overload.json

The load comes from `rolescope load` itself (Locust users replaying the bundled shadow
traffic, latency counted from each request's intended send time). On a machine with two or
more CPUs the service and the load generator are pinned to separate CPUs, so the
generator's work does not show up as the service's latency. For each profile:

1. capacity: closed model, `--limit` users with no think time; answers per second;
2. calm: open model at 0.5 x capacity;
3. storm: open model at 2 x capacity.

What must hold in the storm: every refusal is a 503 `overloaded` (which always carries
Retry-After) with a p99 under 50 ms; no other 5xx and no other failure; the admitted
requests meet the latency SLOs of the SLO spec (the share within each threshold is at least
the objective). The calm phase is the side-by-side reference.

Profiles:
  inference-bound  the bundled roles as shipped: the simulated model's speed sets the
                   capacity, as for a role service in front of an inference server;
  cpu-bound        the same roles at 4,000 tokens/s: the service's own CPU is the bottleneck,
                   so refusals are answered by a saturated core.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from rolescope.exporters import names
from rolescope.gate.model import Objective
from rolescope.gate.policy import load_policy
from rolescope.reliability.disconnects import metric_sum
from rolescope.reliability.process import ManagedService, write_bundled_roles_at_speed
from rolescope.rundir import SAMPLES_FILE, RequestSample, read_samples

REFUSAL_P99_TARGET_MS = 50.0
STORM_FACTOR = 2.0
CALM_FACTOR = 0.5
DEFAULT_LIMIT = 32
CAPACITY_SECONDS = 8.0
WARMUP_S = 2.0


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    tokens_per_second: float | None  # None: the bundled roles' own speed
    ttft_ms: float | None
    # Longest answer the load generator's user pool must cover (see LoadOptions.open_pool_cover_s):
    # a pool sized for these answers reuses keep-alive connections, as an ingress in front of
    # the service would, instead of opening one connection per request.
    pool_cover_s: float


PROFILES: dict[str, Profile] = {
    "inference-bound": Profile("inference-bound", None, None, pool_cover_s=6.0),
    "cpu-bound": Profile("cpu-bound", 4000.0, 1.0, pool_cover_s=1.0),
}


def latency_objectives() -> tuple[Objective, ...]:
    """The latency objectives of the bundled SLO spec's policy (`alerts/slo.yaml`)."""
    return load_policy().latency_objectives


def is_refusal(sample: RequestSample) -> bool:
    """A 503 from the admission limit (its body says `overloaded`), not some other 503."""
    return sample.status == 503 and "overloaded" in (sample.error or "")


def _p(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) * 1000 if values else 0.0


def _share_within(values: Sequence[float], threshold_s: float) -> float:
    return 100.0 * sum(1 for v in values if v <= threshold_s) / len(values) if values else 100.0


def summarise_phase(
    samples: Sequence[RequestSample], objectives: Sequence[Objective], warmup_s: float = WARMUP_S
) -> dict[str, float]:
    """Counts (every request) and latencies (after the warm-up) of one phase; ms and %."""
    admitted = [s for s in samples if s.ok]
    refused = [s for s in samples if not s.ok and is_refusal(s)]
    other_5xx = [s for s in samples if not s.ok and not is_refusal(s) and s.status >= 500]
    failed = [s for s in samples if not s.ok and not is_refusal(s) and s.status < 500]
    # The generator opens its connections in the first moments of a phase; that burst of
    # TCP handshakes is not the steady overload being measured.
    start = min((s.intended_start for s in samples), default=0.0)
    steady = [s for s in samples if s.intended_start - start >= warmup_s]
    steady_refused = [s for s in steady if not s.ok and is_refusal(s)]
    ttft = [s.ttft_s for s in steady if s.ok and s.ttft_s is not None]
    e2e = [s.e2e_s for s in steady if s.ok]
    figures = {
        "requests": float(len(samples)),
        "admitted": float(len(admitted)),
        "refused_503": float(len(refused)),
        "other_5xx": float(len(other_5xx)),
        "failed_requests": float(len(failed)),
        "refusal_p50_ms": round(_p([s.e2e_s for s in steady_refused], 50), 1),
        "refusal_p99_ms": round(_p([s.e2e_s for s in steady_refused], 99), 1),
        # The same refusals timed from the moment they were sent: the service's own share.
        "refusal_from_send_p99_ms": round(_p([s.e2e_s - _lag(s) for s in steady_refused], 99), 1),
        "refusal_p99_with_warmup_ms": round(_p([s.e2e_s for s in refused], 99), 1),
        "admitted_ttft_p99_ms": round(_p(ttft, 99), 1),
        "admitted_e2e_p99_ms": round(_p(e2e, 99), 1),
        # How late the generator sent requests: large values mean the figures above measure it.
        "send_lag_p99_ms": round(_p([_lag(s) for s in steady], 99), 1),
    }
    admitted_steady = [s for s in steady if s.ok]
    for objective in objectives:
        assert objective.metric is not None and objective.threshold_s is not None
        values = [v for s in admitted_steady for v in s.latencies(objective.metric)]
        figures[f"admitted_{objective.metric}_within_slo_pct"] = round(
            _share_within(values, objective.threshold_s), 2
        )
    return figures


def _lag(sample: RequestSample) -> float:
    return max(0.0, sample.start - sample.intended_start)


def verdict(storm: dict[str, float], objectives: Sequence[Objective]) -> list[str]:
    """What the storm phase broke, in words; empty when every promise held."""
    problems = []
    if storm["other_5xx"]:
        problems.append(f"{storm['other_5xx']:.0f} 5xx other than the 503 refusal")
    if storm["failed_requests"]:
        problems.append(f"{storm['failed_requests']:.0f} failed requests (not refusals)")
    if not storm["refused_503"]:
        problems.append("nothing was refused: the load did not exceed the limit")
    elif storm["refusal_p99_ms"] >= REFUSAL_P99_TARGET_MS:
        problems.append(
            f"refusal p99 {storm['refusal_p99_ms']:.1f} ms, target under {REFUSAL_P99_TARGET_MS:.0f} ms"
        )
    for objective in objectives:
        share = storm[f"admitted_{objective.metric}_within_slo_pct"]
        if share < 100 * objective.objective:
            within = f"admitted {objective.metric} within {objective.threshold_s:g} s"
            problems.append(f"{within}: {share:.2f} %, SLO {100 * objective.objective:g} %")
    return problems


def cpu_split() -> tuple[str | None, str | None]:
    """(service CPUs, load generator CPUs): disjoint when this process may use two or more CPUs."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None, None
    half = len(allowed) // 2
    return ",".join(map(str, allowed[half:])), ",".join(map(str, allowed[:half]))


def _rejected_total(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return metric_sum(text, names.HTTP_REJECTED_TOTAL, reason="overload")


def _load(url: str, out: Path, cpus: str | None, seconds: float, **kwargs: Any) -> list[RequestSample]:
    from rolescope.loadtests.runner import LoadOptions, run_load

    run_load(LoadOptions(host=url, out=out, duration_s=seconds, cpus=cpus, seed=9, **kwargs))
    return read_samples(out / SAMPLES_FILE)


def measure_capacity(url: str, out: Path, cpus: str | None, users: int, seconds: float) -> float:
    """Answers per second with `users` closed-loop clients and no think time."""
    samples = _load(url, out, cpus, seconds, users=users, spawn_rate=float(users), speed=10_000.0)
    ok = [s for s in samples if s.ok]
    if len(ok) < 10:
        raise RuntimeError(f"the capacity run answered only {len(ok)} requests; see {out}/locust.log")
    span = max(s.start + s.e2e_s for s in ok) - min(s.start for s in ok)
    return len(ok) / max(span, 1e-9)


def overload_profile(
    workdir: Path, profile: Profile, seconds: float, limit: int = DEFAULT_LIMIT
) -> dict[str, float]:
    """Capacity, calm and storm phases of one profile; figures named `overload_<profile>_…`."""
    roles = (
        write_bundled_roles_at_speed(workdir / "roles", profile.tokens_per_second, profile.ttft_ms or 1.0)
        if profile.tokens_per_second is not None
        else None
    )
    service_cpus, load_cpus = cpu_split()
    env = {"ROLESCOPE_CONCURRENCY_LIMIT": str(limit)}
    if roles is not None:
        env["ROLESCOPE_ROLES_PATH"] = str(roles)
    service = ManagedService(workdir, env, cpus=service_cpus)
    service.start()
    try:
        capacity = measure_capacity(service.url, workdir / "capacity", load_cpus, limit, CAPACITY_SECONDS)
        objectives = latency_objectives()

        def phase(name: str, factor: float) -> dict[str, float]:
            rate = capacity * factor
            samples = _load(
                service.url,
                workdir / name,
                load_cpus,
                seconds,
                rate=rate,
                open_pool_cover_s=profile.pool_cover_s,
            )
            return summarise_phase(samples, objectives)

        calm = phase("calm", CALM_FACTOR)
        rejected_before = _rejected_total(service.url)
        storm = phase("storm", STORM_FACTOR)
        rejected_by_service = _rejected_total(service.url) - rejected_before
    finally:
        service.terminate(15)
    prefix = f"overload_{profile.name.replace('-', '_')}"
    figures = {
        f"{prefix}_limit": float(limit),
        f"{prefix}_pinned": 1.0 if service_cpus else 0.0,
        f"{prefix}_capacity_rps": round(capacity, 1),
        f"{prefix}_offered_rps": round(capacity * STORM_FACTOR, 1),
        f"{prefix}_calm_admitted_e2e_p99_ms": calm["admitted_e2e_p99_ms"],
        f"{prefix}_calm_admitted_ttft_p99_ms": calm["admitted_ttft_p99_ms"],
        f"{prefix}_calm_failed_requests": calm["failed_requests"] + calm["other_5xx"],
        f"{prefix}_storm_rejected_by_service": rejected_by_service,
    }
    figures.update({f"{prefix}_storm_{key}": value for key, value in storm.items()})
    problems = verdict(storm, objectives)
    figures[f"{prefix}_storm_broken_promises"] = float(len(problems))
    for problem in problems:
        print(f"overload {profile.name}: {problem}", file=sys.stderr)
    return figures


def overload_run(
    workdir: Path, seconds: float = 15.0, profiles: Sequence[str] = tuple(PROFILES)
) -> dict[str, float]:
    figures: dict[str, float] = {}
    for name in profiles:
        figures.update(overload_profile(workdir / name, PROFILES[name], seconds))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rolescope.reliability.overload",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--profile", choices=[*PROFILES, "all"], default="all", help="which profile (default all)"
    )
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="length of the calm and storm phases (default 15)"
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        help=f"the service's concurrency limit (default {DEFAULT_LIMIT})",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="keep the run directories and logs here")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.limit < 1 or not math.isfinite(args.seconds):
        parser.error("--seconds must be positive and --limit at least 1")
    from rolescope.reliability.table import print_table

    names_ = list(PROFILES) if args.profile == "all" else [args.profile]
    with tempfile.TemporaryDirectory(prefix="rolescope-overload-") as tmp:
        workdir = args.workdir or Path(tmp)
        figures: dict[str, float] = {}
        for name in names_:
            figures.update(overload_profile(workdir / name, PROFILES[name], args.seconds, args.limit))
    print_table(figures, title="rolescope overload")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 1 if any(k.endswith("_broken_promises") and v for k, v in figures.items()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
