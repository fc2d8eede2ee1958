"""The server's own view of a load window: histogram quantiles from `/metrics` bucket deltas.

Scraping before and after a window and subtracting gives the requests of that
window alone; the quantile is estimated as Prometheus's `histogram_quantile`
does (linear within the bucket, the highest finite bound when it falls in
`+Inf`), so these figures read as a dashboard would show them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families

from rolescope.exporters import names

Buckets = dict[float, float]  # upper bound -> cumulative count, summed over every label set

# The server histograms that match each client figure (TTFT; time per output token; end to end).
SERVER_HISTOGRAMS: Mapping[str, str] = {
    "ttft": names.GENAI_TTFT,
    "itl": names.GENAI_TPOT,
    "e2e": names.GENAI_REQUEST_DURATION,
}


def histogram_buckets(exposition: str, histogram: str) -> Buckets:
    """Cumulative bucket counts of one histogram, summed across its label sets."""
    buckets: Buckets = {}
    for family in text_string_to_metric_families(exposition):
        if family.name != histogram:
            continue
        for sample in family.samples:
            if sample.name == f"{histogram}_bucket":
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return buckets


def bucket_delta(before: Buckets, after: Buckets) -> Buckets:
    return {bound: count - before.get(bound, 0.0) for bound, count in after.items()}


def add_buckets(total: Buckets, more: Buckets) -> Buckets:
    return {bound: total.get(bound, 0.0) + more.get(bound, 0.0) for bound in set(total) | set(more)}


def histogram_quantile(q: float, buckets: Buckets) -> float | None:
    """Prometheus's estimate of quantile `q` from cumulative buckets; None when there are no samples."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside [0, 1]")
    ordered = sorted(buckets.items())
    if not ordered or not math.isinf(ordered[-1][0]):
        return None
    total = ordered[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for index, (bound, count) in enumerate(ordered):
        if count >= rank:
            if math.isinf(bound):
                return ordered[index - 1][0] if index > 0 else None
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return ordered[-2][0] if len(ordered) > 1 else None


def scrape(base_url: str) -> str:
    response = httpx.get(f"{base_url}/metrics", timeout=10)
    response.raise_for_status()
    return response.text


def server_buckets(exposition: str) -> dict[str, Buckets]:
    return {figure: histogram_buckets(exposition, name) for figure, name in SERVER_HISTOGRAMS.items()}


def window_delta(before: str, after: str) -> dict[str, Buckets]:
    """Bucket deltas of every server histogram between two scrapes."""
    start, end = server_buckets(before), server_buckets(after)
    return {figure: bucket_delta(start[figure], end[figure]) for figure in SERVER_HISTOGRAMS}


def server_percentiles(
    deltas: Mapping[str, Buckets], quantiles: tuple[float, ...]
) -> dict[str, dict[str, float]]:
    """Milliseconds per figure and percentile (`p50`…), only where the window had samples."""
    view: dict[str, dict[str, float]] = {}
    for figure, buckets in deltas.items():
        estimates = {f"p{round(q * 100)}": histogram_quantile(q, buckets) for q in quantiles}
        view[figure] = {key: value * 1000 for key, value in estimates.items() if value is not None}
    return view
