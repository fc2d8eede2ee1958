"""The load-test dashboard (the Locust exporter's series) and the tuning dashboard (memory, CPU, profiles)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from rolescope.dashboards.common import (
    RATE,
    new_dashboard,
    quantiles,
    stat_panel,
    text_panel,
    timeseries_panel,
)
from rolescope.exporters import names

LOADTEST_UID = "rolescope-loadtest"
TUNING_UID = "rolescope-tuning"


def loadtest() -> db.Dashboard:
    """What the load generator sent and saw, next to what the service measured."""
    requests = f"{names.LOAD_REQUESTS_TOTAL}[{RATE}]"
    failures = f"{names.LOAD_FAILURES_TOTAL}[{RATE}]"
    return (
        new_dashboard(
            LOADTEST_UID,
            "rolescope / Load test",
            "The Locust exporter's view of a run: users, request and failure rates, client-side "
            "latency next to the service's own.",
            with_role=False,
        )
        .with_row(db.Row("Load"))
        .with_panel(stat_panel("Users", "Simulated users running now.", "short", f"sum({names.LOAD_USERS})"))
        .with_panel(
            stat_panel(
                "Requests per second", "Sent by the load generator.", "reqps", f"sum(rate({requests}))"
            )
        )
        .with_panel(
            stat_panel(
                "Failure ratio",
                "Failed requests as the client saw them.",
                "percentunit",
                f"(sum(rate({failures})) or vector(0)) / sum(rate({requests}))",
                thresholds=[(None, "green"), (0.01, "red")],
            )
        )
        .with_panel(
            stat_panel(
                "Client TTFT p95",
                "Time to first token measured by the client.",
                "s",
                f"histogram_quantile(0.95, sum by (le) (rate({names.LOAD_TTFT}_bucket[{RATE}])))",
            )
        )
        .with_row(db.Row("Rates"))
        .with_panel(
            timeseries_panel(
                "Users", "Simulated users over time.", "short", [(f"sum({names.LOAD_USERS})", "users")]
            )
        )
        .with_panel(
            timeseries_panel(
                "Requests and failures per second",
                "By request name.",
                "reqps",
                [
                    (f"sum by (name) (rate({requests}))", "{{name}}"),
                    (f"sum by (name) (rate({failures}))", "failed {{name}}"),
                ],
            )
        )
        .with_row(db.Row("Latency seen by the client"))
        .with_panel(
            timeseries_panel(
                "Client TTFT percentiles",
                "By request name.",
                "s",
                quantiles(names.LOAD_TTFT, "name", selector=""),
            )
        )
        .with_panel(
            timeseries_panel(
                "Client end-to-end percentiles",
                "By request name.",
                "s",
                quantiles(names.LOAD_REQUEST_DURATION, "name", selector=""),
            )
        )
        .with_panel(
            timeseries_panel(
                "TTFT p95: client vs service",
                "The gap is network, queueing and SSE framing.",
                "s",
                [
                    (
                        f"histogram_quantile(0.95, sum by (le) (rate({names.LOAD_TTFT}_bucket[{RATE}])))",
                        "client",
                    ),
                    (
                        f"histogram_quantile(0.95, sum by (le) (rate({names.GENAI_TTFT}_bucket[{RATE}])))",
                        "service",
                    ),
                ],
                width=24,
            )
        )
    )


def tuning() -> db.Dashboard:
    """Memory per request against the committed baseline, CPU and GC, and where the profiles are."""
    return (
        new_dashboard(
            TUNING_UID,
            "rolescope / Tuning",
            "Allocations and bytes per request against the committed baseline, CPU, memory and GC; "
            "links to the py-spy profiles of a tuning run.",
            with_role=False,
        )
        .with_variable(
            db.TextBoxVariable("run_url")
            .label("Run directory URL")
            .default_value("http://127.0.0.1:8000/runs/latest")
        )
        .with_row(db.Row("Memory per request"))
        .with_panel(
            timeseries_panel(
                "Bytes per request vs baseline",
                "Measured in memory-measuring mode (memray) against the baseline.",
                "bytes",
                [
                    (f"max by (kind) ({names.MEMORY_BYTES_PER_REQUEST})", "measured {{kind}}"),
                    (f"max by (kind) ({names.MEMORY_BASELINE_BYTES_PER_REQUEST})", "baseline {{kind}}"),
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Bytes per request / baseline",
                "Above 1.04 fails the gate (bytes/op within 4 %).",
                "x",
                [
                    (
                        f"max by (kind) ({names.MEMORY_BYTES_PER_REQUEST}) / on (kind) "
                        f"max by (kind) ({names.MEMORY_BASELINE_BYTES_PER_REQUEST})",
                        "{{kind}}",
                    )
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Allocations per request",
                "Allocation count per request (allocs/op within 5 % of the baseline).",
                "short",
                [(f"max by (kind) ({names.MEMORY_ALLOCATIONS_PER_REQUEST})", "{{kind}}")],
            )
        )
        .with_row(db.Row("Process"))
        .with_panel(
            timeseries_panel(
                "CPU seconds per second",
                "Service process CPU use.",
                "short",
                [(f"sum by (instance) (rate(process_cpu_seconds_total[{RATE}]))", "{{instance}}")],
            )
        )
        .with_panel(
            timeseries_panel(
                "Resident memory",
                "Service process RSS.",
                "bytes",
                [("sum by (instance) (process_resident_memory_bytes)", "{{instance}}")],
            )
        )
        .with_panel(
            timeseries_panel(
                "GC collections per second",
                "By generation.",
                "short",
                [(f"sum by (generation) (rate(python_gc_collections_total[{RATE}]))", "gen {{generation}}")],
            )
        )
        .with_panel(
            text_panel(
                "Profiles of the run",
                "`rolescope tune` writes a py-spy profile per run:\n\n"
                "- [flame graph](${run_url}/profile/flamegraph.svg)\n"
                "- [speedscope JSON](${run_url}/profile/profile.speedscope.json)\n"
                "- [report](${run_url}/report.html) and [summary](${run_url}/summary.md)\n",
                width=12,
                height=8,
            )
        )
    )
