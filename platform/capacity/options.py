"""What `rolescope capacity` is asked to do: the service, the SLO spec, the search and the sizing."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolescope.loadtests.load_config import UserKind
from rolescope.loadtests.targets.base import TargetOptions


@dataclass
class CapacityOptions:
    out: Path | None = None
    target: str | None = None
    slo: Path | None = None
    roles: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    faults: dict[str, float] = field(default_factory=dict)
    precision: float = 0.05
    time_budget_s: float = 600.0
    start_rate: float | None = None
    min_rate: float = 0.05
    max_rate: float = 5000.0
    min_requests: int | None = None
    probe_requests: int = 40
    max_step_s: float = 30.0
    warmup_s: float = 2.0
    user: UserKind = "replay"
    traffic: Path | None = None
    target_rate: float | None = None
    headroom: float = 0.3
    cpus: str | None = None
    metrics_url: str | None = (
        None  # with `target`: where its Prometheus metrics are (default: <target>/metrics)
    )
    target_options: TargetOptions = field(default_factory=TargetOptions)  # protocol, headers, TLS, roles
    timeout_s: float = 60.0  # of one request
    prometheus: str | None = None  # read each step's server figures from this Prometheus HTTP API
    prometheus_selector: str = ""  # label matchers of the service's series there, e.g. job="chat"
    join_traces: bool = False  # receive the service's spans; join client and server TTFT by trace id
    trace_port: int = 0  # the span receiver's loopback port (0: any free one)

    def output_dir(self) -> Path:
        return self.out or Path("runs") / f"capacity-{time.strftime('%Y%m%d-%H%M%S')}"
