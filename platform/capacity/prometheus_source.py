"""The service's own view of a step read from a Prometheus server instead of its `/metrics`.

For a service that rolescope cannot scrape itself (behind a mesh, several
replicas, metrics on another port), `capacity --prometheus URL` reads the same
series from the Prometheus that scrapes it: the counters and histograms as they
stood at the step's first and last judged request (instant queries with an
evaluation time), so the step's figures are the same differences `server_metrics`
takes between two scrapes, and the peak of in-flight requests in between (a
range query). Their resolution is Prometheus' scrape interval: a counter read at
time t holds the last scrape at or before t.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from rolescope.capacity.server_metrics import (
    CHAT_ROUTE_PREFIX,
    CPU_SECONDS,
    HISTOGRAMS,
    SeriesValue,
    Snapshot,
    server_figures,
    snapshot_of,
)
from rolescope.errors import ConfigError, EnvironmentProblem
from rolescope.exporters import names

# How long to wait for Prometheus to scrape past the end of a step (several scrape intervals).
SCRAPE_WAIT_S = 60.0
CHECK_WAIT_S = 20.0
_POLL_S = 0.5


@dataclass(frozen=True)
class PrometheusSource:
    """A Prometheus HTTP API and the label matchers that pick the service's series (e.g. job="chat")."""

    url: str
    selector: str = ""
    timeout_s: float = 10.0

    def _matchers(self, *more: str) -> str:
        return ", ".join(m for m in (self.selector.strip().strip("{}"), *more) if m)

    def series_selector(self) -> str:
        wanted = [
            f"{metric}_{suffix}" for metric in HISTOGRAMS.values() for suffix in ("bucket", "sum", "count")
        ]
        wanted += [names.HTTP_REQUESTS_TOTAL, names.HTTP_IN_FLIGHT, CPU_SECONDS]
        return "{" + self._matchers(f'__name__=~"{"|".join(wanted)}"') + "}"

    def _chat(self, metric: str) -> str:
        return metric + "{" + self._matchers(f'route=~"{CHAT_ROUTE_PREFIX}.*"') + "}"

    def requests_selector(self) -> str:
        return self._chat(names.HTTP_REQUESTS_TOTAL)

    def in_flight_query(self) -> str:
        return f"sum({self._chat(names.HTTP_IN_FLIGHT)})"

    def _get(self, path: str, params: dict[str, str]) -> Any:
        try:
            response = httpx.get(f"{self.url.rstrip('/')}{path}", params=params, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise EnvironmentProblem(
                f"--prometheus {self.url}: nothing answers there ({type(exc).__name__})"
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("status") != "success":
            detail = body.get("error") if isinstance(body, dict) else response.text[:120]
            raise EnvironmentProblem(
                f"--prometheus {self.url}: {path} answered HTTP {response.status_code}: {detail} "
                "(expected a Prometheus HTTP API)"
            )
        return body["data"]

    def instant(self, query: str, at: float) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/query", {"query": query, "time": f"{at:.3f}"})["result"])

    def latest_sample_at(self, at: float | None = None) -> float | None:
        """When Prometheus last scraped the service's chat requests (unix seconds), or None: no series."""
        query = f"max(timestamp({self.requests_selector()}))"
        result = self.instant(query, time.time() if at is None else at)
        return float(result[0]["value"][1]) if result else None

    def check(self, wait_s: float = CHECK_WAIT_S) -> None:
        """Before any load: Prometheus answers and holds the service's chat-request series.

        Waits a little: the series appear with the first chat request (the target check's
        own trial turns), and Prometheus sees them only at its next scrape.
        """
        deadline = time.monotonic() + wait_s
        while self.latest_sample_at() is None:
            if time.monotonic() < deadline:
                time.sleep(_POLL_S)
                continue
            raise EnvironmentProblem(
                f"--prometheus {self.url}: no series {self.requests_selector()} — is this Prometheus "
                "scraping the service (and does --prometheus-selector match its labels)?"
            )

    def snapshot(self, at: float) -> Snapshot:
        """The service's counters and histograms as Prometheus held them at `at` (unix seconds)."""
        series: list[SeriesValue] = []
        for item in self.instant(self.series_selector(), at):
            labels = {k: v for k, v in item["metric"].items() if k != "__name__"}
            series.append((item["metric"]["__name__"], labels, float(item["value"][1])))
        scraped_at = self.latest_sample_at(at)
        return snapshot_of(series, scraped_at if scraped_at is not None else at)

    def in_flight(self, start: float, end: float) -> list[float]:
        params = {"query": self.in_flight_query(), "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "1"}
        result = self._get("/api/v1/query_range", params)["result"]
        return [float(value) for item in result for _, value in item["values"]]

    def wait_past(self, end: float, wait_s: float = SCRAPE_WAIT_S) -> float:
        """Wait until Prometheus has scraped after `end`; the time of that scrape."""
        deadline = time.monotonic() + wait_s
        while True:
            latest = self.latest_sample_at()
            if latest is not None and latest >= end:
                return latest
            if time.monotonic() > deadline:
                raise EnvironmentProblem(
                    f"--prometheus {self.url}: no scrape of {self.requests_selector()} after the step "
                    f"ended within {wait_s:.0f} s (the series are absent or no longer scraped)"
                )
            time.sleep(_POLL_S)

    def figures(self, window: Sequence[float]) -> dict[str, Any]:
        """The server figures of the window (unix seconds from, to), as `server_figures` gives them."""
        start, end = window
        scraped = self.wait_past(end)
        first, last = self.snapshot(start), self.snapshot(scraped)
        figures = server_figures(first, last, self.in_flight(first.at, last.at))
        figures["source"] = f"prometheus {self.url}"
        return figures


def prometheus_source(url: str | None, selector: str = "") -> PrometheusSource | None:
    if url is None:
        return None
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--prometheus {url!r} must be a URL such as http://127.0.0.1:9090")
    return PrometheusSource(url, selector)
