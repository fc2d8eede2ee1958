"""The service's own view of a step: its `/metrics` scraped at the start and end, and the difference.

Server-side TTFT and request duration come from the service's histograms (so
their percentiles are interpolated within buckets, as Prometheus'
`histogram_quantile` does); requests, 5xx answers and in-flight requests from
the HTTP series of the chat routes; CPU from `process_cpu_seconds_total`.
Parsing and arithmetic are pure; `scrape` is the only I/O.
"""

from __future__ import annotations

import math
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from rolescope.exporters import names

CHAT_ROUTE_PREFIX = "/v1/chat"
HISTOGRAMS: dict[str, str] = {
    "ttft_s": names.GENAI_TTFT,
    "request_duration_s": names.GENAI_REQUEST_DURATION,
    "http_duration_s": names.HTTP_REQUEST_DURATION,
}
CPU_SECONDS = "process_cpu_seconds_total"


@dataclass(frozen=True)
class Histogram:
    buckets: tuple[tuple[float, float], ...]  # (upper bound, cumulative count), sorted, +Inf last
    total: float
    count: float

    def minus(self, earlier: Histogram) -> Histogram:
        before = dict(earlier.buckets)
        return Histogram(
            tuple((le, count - before.get(le, 0.0)) for le, count in self.buckets),
            self.total - earlier.total,
            self.count - earlier.count,
        )


EMPTY_HISTOGRAM = Histogram((), 0.0, 0.0)


@dataclass(frozen=True)
class Snapshot:
    at: float  # monotonic seconds
    chat_requests: float = 0.0
    chat_failures: float = 0.0  # 5xx answers on the chat routes, refusals (503) included
    in_flight: float = 0.0
    cpu_seconds: float | None = None
    histograms: dict[str, Histogram] = field(default_factory=dict)


def _is_chat(labels: dict[str, str]) -> bool:
    return labels.get("route", "").startswith(CHAT_ROUTE_PREFIX)


SeriesValue = tuple[str, dict[str, str], float]  # (series name, labels, value)
_SUFFIXES = ("_bucket", "_sum", "_count")


def _histogram(samples: Iterable[SeriesValue], chat_only: bool) -> Histogram:
    buckets: dict[float, float] = {}
    total = count = 0.0
    for name, labels, value in samples:
        if chat_only and not _is_chat(labels):
            continue
        if name.endswith("_bucket"):
            bound = float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + value
        elif name.endswith("_sum"):
            total += value
        elif name.endswith("_count"):
            count += value
    return Histogram(tuple(sorted(buckets.items())), total, count)


def snapshot_of(series: Iterable[SeriesValue], at: float) -> Snapshot:
    """A snapshot of the figures capacity compares; series that are absent stay at zero / None."""
    requests = failures = in_flight = 0.0
    cpu: float | None = None
    by_histogram: dict[str, list[SeriesValue]] = {metric: [] for metric in HISTOGRAMS.values()}
    for name, labels, value in series:
        base = next((name.removesuffix(x) for x in _SUFFIXES if name.endswith(x)), name)
        if base in by_histogram:
            by_histogram[base].append((name, labels, value))
        elif name == names.HTTP_REQUESTS_TOTAL and _is_chat(labels):
            requests += value
            if labels.get("status_class") == "5xx":
                failures += value
        elif name == names.HTTP_IN_FLIGHT and _is_chat(labels):
            in_flight += value
        elif name == CPU_SECONDS:
            cpu = (cpu or 0.0) + value
    histograms = {
        key: _histogram(by_histogram[metric], chat_only=metric == names.HTTP_REQUEST_DURATION)
        for key, metric in HISTOGRAMS.items()
        if by_histogram[metric]
    }
    return Snapshot(at, requests, failures, in_flight, cpu, histograms)


def parse_metrics(text: str, at: float) -> Snapshot:
    """A snapshot from Prometheus exposition text."""
    return snapshot_of(
        (
            (sample.name, dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ),
        at,
    )


def scrape(url: str, timeout_s: float = 2.0, verify: bool | ssl.SSLContext = True) -> Snapshot | None:
    """The service's `/metrics` now, or None when it does not answer (the step goes on without it)."""
    try:
        response = httpx.get(url, timeout=timeout_s, verify=verify)
        response.raise_for_status()
    except httpx.HTTPError:
        return None
    return parse_metrics(response.text, time.monotonic())


def histogram_quantile(q: float, histogram: Histogram) -> float | None:
    """Prometheus' `histogram_quantile`: linear within the bucket holding the q-th observation."""
    if histogram.count <= 0 or not histogram.buckets:
        return None
    rank = q * histogram.buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in histogram.buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def server_figures(start: Snapshot, end: Snapshot, in_flight: Sequence[float] = ()) -> dict[str, Any]:
    """What the service saw between two snapshots: counts, CPU and percentiles of its histograms."""
    wall = max(end.at - start.at, 1e-9)
    requests = end.chat_requests - start.chat_requests
    figures: dict[str, Any] = {
        "requests": requests,
        "failures": end.chat_failures - start.chat_failures,
        "throughput_rps": requests / wall,
        "in_flight_max": max([*in_flight, end.in_flight]),
    }
    if start.cpu_seconds is not None and end.cpu_seconds is not None:
        cpu = end.cpu_seconds - start.cpu_seconds
        figures["cpu_seconds"] = cpu
        figures["cpu_utilization"] = cpu / wall
        figures["cpu_ms_per_request"] = 1000 * cpu / requests if requests > 0 else None
    for key in HISTOGRAMS:
        delta = end.histograms.get(key, EMPTY_HISTOGRAM).minus(start.histograms.get(key, EMPTY_HISTOGRAM))
        figures[key] = {
            "count": delta.count,
            "mean": delta.total / delta.count if delta.count > 0 else None,
            "p50": histogram_quantile(0.50, delta),
            "p95": histogram_quantile(0.95, delta),
            "p99": histogram_quantile(0.99, delta),
        }
    return figures
