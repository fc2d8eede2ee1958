"""What a traffic file holds: sessions, turns, roles, rate, message lengths and gaps (pure)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rolescope.loadtests.traffic_format import TrafficRecord, group_sessions

QUANTILES: tuple[int, ...] = (50, 90, 99)


@dataclass(frozen=True, slots=True)
class Spread:
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            return cls(0.0, 0.0, 0.0, 0.0)
        p50, p90, p99 = (float(v) for v in np.percentile(np.asarray(values, dtype=float), QUANTILES))
        return cls(p50, p90, p99, float(max(values)))


@dataclass(frozen=True, slots=True)
class TrafficSummary:
    requests: int
    sessions: int
    span_s: float
    rate_rps: float
    stream_share: float
    roles: dict[str, int]
    turns_per_session: Spread
    message_chars: Spread
    gap_s: Spread  # between consecutive turns of a session
    statuses: dict[int, int]
    original_latency_s: Spread


def summarize(records: Sequence[TrafficRecord]) -> TrafficSummary:
    sessions = group_sessions(records)
    arrivals = [r.arrival for r in records]
    span = (max(arrivals) - min(arrivals)) if arrivals else 0.0
    gaps = [
        later.arrival - earlier.arrival
        for turns in sessions.values()
        for earlier, later in itertools.pairwise(turns)
    ]
    return TrafficSummary(
        requests=len(records),
        sessions=len(sessions),
        span_s=span,
        rate_rps=len(records) / span if span > 0 else 0.0,
        stream_share=sum(r.stream for r in records) / len(records) if records else 0.0,
        roles=dict(Counter(r.role for r in records).most_common()),
        turns_per_session=Spread.of([float(len(t)) for t in sessions.values()]),
        message_chars=Spread.of([float(len(r.message)) for r in records]),
        gap_s=Spread.of(gaps),
        statuses=dict(sorted(Counter(r.original.status for r in records).items())),
        original_latency_s=Spread.of([r.original.latency_s for r in records]),
    )
