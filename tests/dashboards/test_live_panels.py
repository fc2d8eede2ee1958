"""Every dashboard panel's PromQL on a real Prometheus scraping a real service and load generator."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rolescope.alerts.render import write_rule_files
from rolescope.alerts.spec import load_slo_spec
from rolescope.dashboards.build import build_all, iter_panels, panel_queries
from rolescope.dashboards.promql import PrometheusClient, PrometheusQueryError, render_for_prometheus

# Panels that must show data whenever the service is under load (the rest may
# legitimately be empty: errors, rejections, timeouts, drops, memory gauges).
CORE_PANELS = {
    "rolescope-overview": {
        "Requests per second",
        "Requests per second by role",
        "Request duration by role",
        "In flight vs limit",
        "Concurrency limit",
        "Requests per second by status class",
        "Requests per second by role version",
        "Time to first token p95 by role version",
    },
    "rolescope-streaming": {
        "TTFT heatmap",
        "TTFT percentiles",
        "TPOT heatmap",
        "Output tokens per second",
        "Generation duration percentiles",
    },
    "rolescope-slos": {
        "SLI over the period",
        "Error budget remaining",
        "Current burn rate",
        "SLI vs objective",
        "Burn rate by window",
    },
    "rolescope-loadtest": {
        "Users",
        "Requests per second",
        "Client TTFT p95",
        "Client end-to-end percentiles",
    },
    "rolescope-tuning": {"CPU seconds per second", "Resident memory"},
}
RATE_INTERVAL = "10s"
DASHBOARDS_DIR = Path(__file__).resolve().parents[2] / "dashboards"


@pytest.fixture
def loaded_prometheus(tmp_path: Path, service: Any, background_load: Any, prometheus_server: Any) -> Any:
    write_rule_files(load_slo_spec(), tmp_path / "rules")
    load = background_load(service.url, workers=3)
    prom = prometheus_server(
        targets=[service.url.removeprefix("http://"), load.exporter_target],
        rule_files=sorted((tmp_path / "rules").glob("*.yaml")),
    )
    # Ready once the SLO recordings and the client-side histograms have two scrapes behind them.
    for ready in (
        'slo:period_error_budget_remaining:ratio{sloth_id="rolescope-chat-availability"}',
        f"rate(rolescope_load_time_to_first_token_seconds_count[{RATE_INTERVAL}]) > 0",
        f"rate(gen_ai_server_time_per_output_token_seconds_count[{RATE_INTERVAL}]) > 0",
    ):
        assert prom.wait_for(ready, timeout=60), ready
    return prom


def test_every_panel_query_runs_and_core_panels_return_data(loaded_prometheus: Any) -> None:
    queries = panel_queries(build_all())
    assert len(queries) > 80
    errors, with_data = [], set()
    deadline = time.monotonic() + 30
    with PrometheusClient(loaded_prometheus.url) as client:
        while True:
            for query in queries:
                expr = render_for_prometheus(query.expr, rate_interval=RATE_INTERVAL)
                try:
                    if client.instant(expr):
                        with_data.add((query.dashboard_uid, query.panel_title))
                except PrometheusQueryError as exc:
                    errors.append(f"{query.dashboard_uid} / {query.panel_title}: {exc}")
            assert not errors, errors
            missing = {(uid, t) for uid, titles in CORE_PANELS.items() for t in titles} - with_data
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(1)
    assert not missing, f"core panels without data: {sorted(missing)}"


def test_a_broken_query_is_reported_not_ignored(prometheus_server: Any) -> None:
    prom = prometheus_server(targets=["127.0.0.1:9"])
    with PrometheusClient(prom.url) as client, pytest.raises(PrometheusQueryError, match="parse"):
        client.instant("sum(rate(rolescope_http_requests_total[5m])")


def test_preview_command_renders_each_panel_to_png(loaded_prometheus: Any, tmp_path: Path) -> None:
    source = tmp_path / "dashboards"
    source.mkdir()
    shutil.copy(DASHBOARDS_DIR / "rolescope-streaming.json", source)
    out = tmp_path / "preview"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rolescope",
            "dashboards",
            "preview",
            "--prometheus",
            loaded_prometheus.url,
            "--out",
            str(out),
            "--minutes",
            "2",
            "--rate-interval",
            RATE_INTERVAL,
            "--from",
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    streaming = build_all()["rolescope-streaming"]
    expected = [p for p in iter_panels(streaming) if p.get("targets")]
    pngs = sorted((out / "rolescope-streaming").glob("*.png"))
    assert len(pngs) == len(expected)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert f"wrote {len(expected)} panels" in result.stdout and "0 without data" in result.stdout
    assert (out / "index.html").read_text().count("<img") == len(expected)
