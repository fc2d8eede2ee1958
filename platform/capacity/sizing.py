"""From one replica's capacity to settings: replicas for a target rate, the HPA target, a Helm snippet.

A replica is planned to run at (1 − headroom) of its capacity, so a spike, a
slow node or a replica being replaced still leaves every SLO standing:
replicas = ⌈R ÷ (capacity × (1 − headroom))⌉, and the autoscaler aims at that
same per-pod rate. The concurrency limit follows Little's law at the edge:
requests in flight = rate × time in the system, with the p99 time of the last
step that held, so the limit refuses only what the replica could not answer in
time anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import yaml

# The metric a Prometheus adapter serves per pod for the HPA (from rolescope_http_requests_total).
REQUESTS_METRIC = "rolescope_http_requests_per_second"


@dataclass(frozen=True)
class Sizing:
    target_rps: float
    capacity_rps: float
    headroom: float
    per_pod_rps: float
    replicas: int
    max_replicas: int
    concurrency_limit: int


def size_for(
    target_rps: float,
    capacity_rps: float,
    headroom: float,
    edge_p99_s: float | None,
    limit: int | None = None,
) -> Sizing:
    if target_rps <= 0 or capacity_rps <= 0:
        raise ValueError(f"rates must be > 0 (target {target_rps}, capacity {capacity_rps})")
    if not 0 <= headroom < 1:
        raise ValueError(f"headroom must be in [0, 1), got {headroom}")
    per_pod = capacity_rps * (1 - headroom)
    replicas = max(1, math.ceil(target_rps / per_pod - 1e-9))
    # Room to absorb growth beyond the target before anyone has to look: half again, at least one more.
    max_replicas = max(replicas + 1, math.ceil(1.5 * replicas))
    little = math.ceil(capacity_rps * (edge_p99_s or 1.0))
    return Sizing(
        target_rps, capacity_rps, headroom, per_pod, replicas, max_replicas, limit or max(1, little)
    )


def helm_values(sizing: Sizing) -> dict[str, Any]:
    return {
        "replicaCount": sizing.replicas,
        "server": {"concurrencyLimit": sizing.concurrency_limit},
        "autoscaling": {
            "enabled": True,
            "minReplicas": sizing.replicas,
            "maxReplicas": sizing.max_replicas,
            "targetRequestsPerSecondPerPod": round(sizing.per_pod_rps, 3),
            "requestsPerSecondMetric": REQUESTS_METRIC,
        },
    }


def helm_snippet(sizing: Sizing) -> str:
    header = (
        f"# rolescope capacity: {sizing.target_rps:g} req/s at {sizing.capacity_rps:.3g} req/s per replica\n"
        f"# with {100 * sizing.headroom:g} % headroom ({sizing.per_pod_rps:.3g} req/s per pod).\n"
        "# Several replicas share sessions through Redis: set sessionStore.redis.url as well.\n"
        f"# The HPA's per-pod metric ({REQUESTS_METRIC}) needs a Prometheus adapter serving it.\n"
    )
    return header + yaml.safe_dump(helm_values(sizing), sort_keys=False)
