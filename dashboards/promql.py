"""Run dashboard PromQL without Grafana: substitute Grafana's variables, query Prometheus.

Used by the live panel checks and the PNG preview. `$__rate_interval` becomes
a fixed window (Grafana derives it from the scrape interval), `$role` matches
every role, `$__range` the previewed span.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from rolescope.errors import EnvironmentProblem


def render_for_prometheus(expr: str, rate_interval: str = "1m", role: str = ".*", range_: str = "1h") -> str:
    return (
        expr.replace("$__rate_interval", rate_interval)
        .replace("$__range", range_)
        .replace("${role}", role)
        .replace("$role", role)
    )


@dataclass(frozen=True, slots=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]  # (unix seconds, value)


class PrometheusQueryError(RuntimeError):
    """Prometheus answered the query with an error (bad PromQL, bad range)."""


class PrometheusClient:
    """The two Prometheus HTTP API calls the checks and the preview need."""

    def __init__(self, url: str, timeout_s: float = 15.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        try:
            response = self._http.get(f"{self.url}{path}", params=params)
        except httpx.HTTPError as exc:
            raise EnvironmentProblem(f"cannot reach Prometheus at {self.url}: {exc}") from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise EnvironmentProblem(
                f"{self.url} did not answer like Prometheus (HTTP {response.status_code})"
            ) from exc
        if body.get("status") != "success":
            raise PrometheusQueryError(f"{body.get('errorType', 'error')}: {body.get('error', body)}")
        return body["data"]

    def instant(self, expr: str, at: float | None = None) -> list[Series]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        data = self._get("/api/v1/query", params)
        if data["resultType"] == "scalar":
            return [Series({}, [(float(data["result"][0]), float(data["result"][1]))])]
        return [
            Series(dict(item["metric"]), [(float(item["value"][0]), float(item["value"][1]))])
            for item in data["result"]
        ]

    def range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        data = self._get("/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step})
        return [
            Series(dict(item["metric"]), [(float(t), float(v)) for t, v in item["values"]])
            for item in data["result"]
        ]


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's `{{label}}` legend format, filled in from a series' labels."""
    if not template:
        return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "value"
    out = template
    for key, value in labels.items():
        out = out.replace(f"{{{{{key}}}}}", value)
    return out
