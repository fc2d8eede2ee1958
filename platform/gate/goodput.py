"""Goodput: the share of all requests that succeeded and met every latency objective that applies.

One definition for every place that prints the figure (`rolescope load`'s
SLIs, the gate's goodput check, the tuning sweep's costs). TTFT, TPOT and ITL
exist only for a streamed reply, so their objectives judge streams; a reply
sent in one piece is judged by the end-to-end objective (when the spec has
one) and by its success. Holding a one-piece reply's end-to-end time to the
TTFT objective would count a complete, in-time answer as bad.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rolescope.gate.model import Objective
from rolescope.rundir import STREAM_METRICS, RequestSample


def applies_to(objective: Objective, sample: RequestSample) -> bool:
    """Whether a latency objective judges this request at all."""
    return sample.streamed or objective.metric not in STREAM_METRICS


def is_good(sample: RequestSample, latency_objectives: Iterable[Objective]) -> bool:
    """A request counts towards goodput when it succeeded and met every latency objective that applies."""
    if not sample.ok:
        return False
    for objective in latency_objectives:
        if objective.metric is None or objective.threshold_s is None or not applies_to(objective, sample):
            continue
        if any(value > objective.threshold_s for value in sample.latencies(objective.metric)):
            return False
    return True


def good_requests(samples: Sequence[RequestSample], latency_objectives: Sequence[Objective]) -> int:
    return sum(1 for sample in samples if is_good(sample, latency_objectives))


def goodput_share(samples: Sequence[RequestSample], latency_objectives: Sequence[Objective]) -> float:
    """Good requests over all requests (failures included); 0 for no requests."""
    return good_requests(samples, latency_objectives) / len(samples) if samples else 0.0
