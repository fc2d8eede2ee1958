"""The load generator's own Prometheus metrics: users, requests, failures, client-side latency.

Unlike the existing Locust exporters, which republish Locust's rounded
percentiles as gauges, latency here is exposed as histograms, so a dashboard
can compute any percentile over any window and aggregate across load
processes. Observations come from the same per-request samples that
`samples.jsonl` stores (on the master, in distributed mode, as workers report
them). This module imports no Locust: the load side wires it to Locust events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from rolescope.exporters import names


class LoadSample(Protocol):
    name: str
    ok: bool
    e2e_s: float
    ttft_s: float | None


def _base(name: str) -> str:
    # prometheus-client appends `_total` to counters itself.
    return name.removesuffix("_total")


class LoadMetrics:
    """Every load-generator metric on one registry (a fresh one unless given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.users = Gauge(names.LOAD_USERS, "Simulated users currently running.", registry=self.registry)
        self.requests = Counter(
            _base(names.LOAD_REQUESTS_TOTAL),
            "Requests sent by the load generator, by request name.",
            (names.LABEL_NAME, names.LABEL_METHOD),
            registry=self.registry,
        )
        self.failures = Counter(
            _base(names.LOAD_FAILURES_TOTAL),
            "Requests that failed (status, transport error or in-stream error event).",
            (names.LABEL_NAME, names.LABEL_METHOD),
            registry=self.registry,
        )
        self.ttft = Histogram(
            names.LOAD_TTFT,
            "Client-side time to the first non-empty token, from the intended send time.",
            (names.LABEL_NAME,),
            buckets=names.GENAI_TTFT_BUCKETS,
            registry=self.registry,
        )
        self.duration = Histogram(
            names.LOAD_REQUEST_DURATION,
            "Client-side end-to-end request time, from the intended send time.",
            (names.LABEL_NAME,),
            buckets=names.GENAI_DURATION_BUCKETS,
            registry=self.registry,
        )

    def track_users(self, count: Callable[[], float]) -> None:
        """Read the user count from the runner at scrape time."""
        self.users.set_function(count)

    def observe(self, sample: LoadSample, method: str = "POST") -> None:
        self.requests.labels(sample.name, method).inc()
        if not sample.ok:
            self.failures.labels(sample.name, method).inc()
            return
        self.duration.labels(sample.name).observe(sample.e2e_s)
        if sample.ttft_s is not None:
            self.ttft.labels(sample.name).observe(sample.ttft_s)


def serve_load_metrics(metrics: LoadMetrics, port: int, host: str = "127.0.0.1") -> int:
    """Expose the metrics over HTTP; returns the bound port (useful with port 0)."""
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return int(server.server_port)
