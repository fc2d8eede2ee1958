"""The service overview (RED per role) and streaming (TTFT / TPOT / ITL, tokens per second) dashboards."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from rolescope.dashboards.common import (
    RATE,
    ROLE,
    heatmap_panel,
    new_dashboard,
    quantiles,
    stat_panel,
    text_panel,
    timeseries_panel,
)
from rolescope.exporters import names

OVERVIEW_UID = "rolescope-overview"
STREAMING_UID = "rolescope-streaming"

_REQUESTS = f"{names.HTTP_REQUESTS_TOTAL}{{{ROLE}}}"
_ERRORS = f'{names.HTTP_REQUESTS_TOTAL}{{{ROLE}, {names.LABEL_STATUS_CLASS}="5xx"}}'
_VERSION = names.LABEL_ROLE_VERSION
# Requests a version answered: those with a known version (no `<other>`: not yet routed, or not loaded).
_ANSWERED = f'{names.HTTP_REQUESTS_TOTAL}{{{ROLE}, {_VERSION}!="{names.OTHER_ROLE_VERSION}"}}'
_VERSION_LEGEND = f"{{{{role}}}} {{{{{_VERSION}}}}}"


def overview() -> db.Dashboard:
    """Rate, errors and duration per role, plus saturation of the admission limit."""
    return (
        new_dashboard(
            OVERVIEW_UID,
            "rolescope / Service overview",
            "Requests, errors and durations per role (RED), and how close the service is to its limit.",
        )
        .with_row(db.Row("Now"))
        .with_panel(
            stat_panel(
                "Requests per second",
                "All routes, selected roles.",
                "reqps",
                f"sum(rate({_REQUESTS}[{RATE}]))",
            )
        )
        .with_panel(
            stat_panel(
                "Error ratio (5xx)",
                "Share of requests answered with a server error.",
                "percentunit",
                f"(sum(rate({_ERRORS}[{RATE}])) or vector(0)) / sum(rate({_REQUESTS}[{RATE}]))",
                thresholds=[(None, "green"), (0.001, "orange"), (0.01, "red")],
            )
        )
        .with_panel(
            stat_panel(
                "In flight", "Requests being served right now.", "short", f"sum({names.HTTP_IN_FLIGHT})"
            )
        )
        .with_panel(
            stat_panel(
                "Concurrency limit",
                "Configured in-flight limit (0 = none).",
                "short",
                f"max({names.CONCURRENCY_LIMIT})",
            )
        )
        .with_row(db.Row("Rate, errors, duration per role"))
        .with_panel(
            timeseries_panel(
                "Requests per second by role",
                "HTTP requests per second.",
                "reqps",
                [(f"sum by (role) (rate({_REQUESTS}[{RATE}]))", "{{role}}")],
            )
        )
        .with_panel(
            timeseries_panel(
                "Requests per second by status class",
                "Every route, by status class.",
                "reqps",
                [
                    (
                        f"sum by ({names.LABEL_STATUS_CLASS}) (rate({_REQUESTS}[{RATE}]))",
                        f"{{{{{names.LABEL_STATUS_CLASS}}}}}",
                    )
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Error ratio by role",
                "5xx answers divided by all answers, per role.",
                "percentunit",
                [
                    (
                        f"sum by (role) (rate({_ERRORS}[{RATE}]))"
                        f" / sum by (role) (rate({_REQUESTS}[{RATE}]))",
                        "{{role}}",
                    )
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Request duration by role",
                "HTTP request duration percentiles, per role.",
                "s",
                quantiles(names.HTTP_REQUEST_DURATION, "role"),
            )
        )
        .with_row(db.Row("Versions side by side"))
        .with_panel(
            timeseries_panel(
                "Requests per second by role version",
                "Where the release policy sends traffic: each loaded version of each role.",
                "reqps",
                [(f"sum by (role, {_VERSION}) (rate({_ANSWERED}[{RATE}]))", _VERSION_LEGEND)],
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Error ratio by role version",
                "5xx answers divided by all answers, per version: a canary that fails shows here first.",
                "percentunit",
                [
                    (
                        f"sum by (role, {_VERSION}) (rate({_ERRORS}[{RATE}]))"
                        f" / sum by (role, {_VERSION}) (rate({_ANSWERED}[{RATE}]))",
                        _VERSION_LEGEND,
                    )
                ],
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Time to first token p95 by role version",
                "The same minutes, the same machine: the fairest comparison of two versions.",
                "s",
                [
                    (
                        f"histogram_quantile(0.95, sum by (le, role, {_VERSION}) "
                        f"(rate({names.GENAI_TTFT}_bucket{{{ROLE}}}[{RATE}])))",
                        f"p95 {_VERSION_LEGEND}",
                    )
                ],
                width=8,
            )
        )
        .with_row(db.Row("Saturation"))
        .with_panel(
            timeseries_panel(
                "In flight vs limit",
                "In-flight requests per route, and the configured limit.",
                "short",
                [
                    (f"sum by (route) ({names.HTTP_IN_FLIGHT})", "{{route}}"),
                    (f"max({names.CONCURRENCY_LIMIT})", "limit"),
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Rejected requests",
                "Requests refused before any work, by reason (overload → 503).",
                "reqps",
                [(f"sum by (reason) (rate({names.HTTP_REJECTED_TOTAL}[{RATE}]))", "{{reason}}")],
            )
        )
        .with_panel(
            timeseries_panel(
                "Open WebSocket connections",
                "Chat WebSockets held open (mostly idle between turns); each turn counts under route ws.",
                "short",
                [(f"sum({names.WEBSOCKET_CONNECTIONS_OPEN})", "open")],
            )
        )
        .with_panel(
            timeseries_panel(
                "Session store operation p95",
                "Per operation and backend.",
                "s",
                quantiles(names.STORE_OPERATION_DURATION, "operation", selector="", levels=(0.95,)),
            )
        )
        .with_panel(
            timeseries_panel(
                "Inference timeouts and errors",
                "Per role, per second.",
                "short",
                [
                    (
                        f"sum by (role) (rate({names.INFERENCE_TIMEOUTS_TOTAL}{{{ROLE}}}[{RATE}]))",
                        "timeouts {{role}}",
                    ),
                    (
                        f"sum by (role) (rate({names.INFERENCE_ERRORS_TOTAL}{{{ROLE}}}[{RATE}]))",
                        "errors {{role}}",
                    ),
                ],
            )
        )
    )


def streaming() -> db.Dashboard:
    """What a streaming client feels: time to first token, time per token, tokens per second."""
    output = f'{names.GENAI_TOKEN_USAGE}{{{ROLE}, {names.LABEL_TOKEN_TYPE}="output"}}'
    return (
        new_dashboard(
            STREAMING_UID,
            "rolescope / Streaming",
            "Time to first token, time per output token and inter-token latency, tokens per second.",
        )
        .with_row(db.Row("Time to first token"))
        .with_panel(heatmap_panel("TTFT heatmap", "Distribution of time to first token.", names.GENAI_TTFT))
        .with_panel(
            timeseries_panel("TTFT percentiles", "Per role.", "s", quantiles(names.GENAI_TTFT, "role"))
        )
        .with_row(db.Row("Time per output token / inter-token latency"))
        .with_panel(
            heatmap_panel(
                "TPOT heatmap", "Distribution of time per output token after the first one.", names.GENAI_TPOT
            )
        )
        .with_panel(
            timeseries_panel(
                "TPOT (mean ITL per request) percentiles",
                "The service records each reply's mean inter-token latency as TPOT; per-gap ITL percentiles "
                "are measured client side by `rolescope load` (samples.jsonl, slis.json).",
                "s",
                quantiles(names.GENAI_TPOT, "role"),
            )
        )
        .with_row(db.Row("Throughput and end to end"))
        .with_panel(
            timeseries_panel(
                "Output tokens per second",
                "Generated tokens per second, per role.",
                "short",
                [(f"sum by (role) (rate({output}[{RATE}]))", "{{role}}")],
            )
        )
        .with_panel(
            timeseries_panel(
                "Generation duration percentiles",
                "Whole generation, first byte in to last token out.",
                "s",
                quantiles(names.GENAI_REQUEST_DURATION, "role"),
            )
        )
        .with_panel(
            heatmap_panel(
                "Generation duration heatmap",
                "Distribution of whole-generation time.",
                names.GENAI_REQUEST_DURATION,
            )
        )
        .with_panel(
            timeseries_panel(
                "Output tokens per generation",
                "Mean output tokens per finished generation.",
                "short",
                [
                    (
                        f"sum by (role) (rate({output}[{RATE}])) / sum by (role) "
                        f"(rate({names.GENAI_REQUEST_DURATION}_count{{{ROLE}}}[{RATE}]))",
                        "{{role}}",
                    )
                ],
            )
        )
        .with_panel(
            text_panel(
                "Reading these panels",
                "TTFT is what a user waits before anything appears; TPOT is the pace after that. "
                "Exemplars on the latency histograms link to the request's trace.",
                height=3,
            )
        )
    )
