"""Every metric and label name rolescope exposes, defined once.

The service's metric module, the Locust exporter, the SLO rule generator, the
dashboards and the gate import these constants instead of retyping strings.
The generative-AI series follow the OpenTelemetry GenAI semantic conventions
(names with dots turned into underscores, as Prometheus exporters do).
"""

from __future__ import annotations

# --- service: HTTP ------------------------------------------------------------
# counter and histogram: route, method, status_class, role, role_version
HTTP_REQUESTS_TOTAL = "rolescope_http_requests_total"
HTTP_REQUEST_DURATION = "rolescope_http_request_duration_seconds"
HTTP_IN_FLIGHT = "rolescope_http_requests_in_flight"  # gauge: route
HTTP_REJECTED_TOTAL = "rolescope_http_requests_rejected_total"  # counter: reason (overload, too_large, ...)
CONCURRENCY_LIMIT = "rolescope_concurrency_limit"  # gauge: the configured in-flight limit
WEBSOCKET_CONNECTIONS_OPEN = "rolescope_websocket_connections_open"  # gauge: accepted chat WebSockets

# --- service: generative AI (OpenTelemetry GenAI semantic conventions) ---------
# The GenAI series below carry role, role_version, gen_ai_operation_name, gen_ai_provider_name,
# gen_ai_request_model.
GENAI_TTFT = "gen_ai_server_time_to_first_token_seconds"  # histogram
GENAI_TPOT = "gen_ai_server_time_per_output_token_seconds"  # histogram
GENAI_REQUEST_DURATION = "gen_ai_server_request_duration_seconds"  # histogram
GENAI_TOKEN_USAGE = "gen_ai_server_token_usage_tokens_total"  # counter: + gen_ai_token_type
# counters: role, role_version, gen_ai_request_model
INFERENCE_TIMEOUTS_TOTAL = "rolescope_inference_timeouts_total"
INFERENCE_ERRORS_TOTAL = "rolescope_inference_errors_total"

# --- service: storage and telemetry -------------------------------------------
# histogram: operation, backend
STORE_OPERATION_DURATION = "rolescope_session_store_operation_duration_seconds"
TELEMETRY_DROPPED_TOTAL = "rolescope_telemetry_dropped_total"  # counter: signal (spans, capture), reason
MEMORY_BYTES_PER_REQUEST = "rolescope_memory_allocated_bytes_per_request"  # gauge: kind (measuring mode)
MEMORY_ALLOCATIONS_PER_REQUEST = "rolescope_memory_allocations_per_request"  # gauge: kind (measuring mode)
MEMORY_BASELINE_BYTES_PER_REQUEST = "rolescope_memory_baseline_bytes_per_request"  # gauge: kind
BUILD_INFO = "rolescope_build_info"  # gauge = 1: version, python

# --- service: role reloads and shadow mirroring ----------------------------------
ROLE_RELOADS_TOTAL = "rolescope_role_reloads_total"  # counter: outcome (applied, refused)
TLS_RELOADS_TOTAL = "rolescope_tls_reloads_total"  # counter: outcome (applied, refused)
MIRROR_REQUESTS_TOTAL = "rolescope_mirror_requests_total"  # counter: outcome (ok, failed, timeout, shed)
MIRROR_REQUEST_DURATION = "rolescope_mirror_request_duration_seconds"  # histogram: outcome
# counter: role, role_version (the version now answering): sessions whose stored version was removed
SESSION_VERSION_MOVES_TOTAL = "rolescope_session_version_moves_total"

# --- load generator (Locust) ----------------------------------------------------
LOAD_USERS = "rolescope_load_users"  # gauge
LOAD_REQUESTS_TOTAL = "rolescope_load_requests_total"  # counter: name, method
LOAD_FAILURES_TOTAL = "rolescope_load_failures_total"  # counter: name, method
LOAD_TTFT = "rolescope_load_time_to_first_token_seconds"  # histogram: name
LOAD_REQUEST_DURATION = "rolescope_load_request_duration_seconds"  # histogram: name

# --- label names -----------------------------------------------------------------
LABEL_ROUTE = "route"
LABEL_METHOD = "method"
LABEL_STATUS_CLASS = "status_class"
LABEL_ROLE = "role"
LABEL_ROLE_VERSION = "role_version"
LABEL_REASON = "reason"
LABEL_OPERATION_NAME = "gen_ai_operation_name"
LABEL_PROVIDER_NAME = "gen_ai_provider_name"
LABEL_REQUEST_MODEL = "gen_ai_request_model"
LABEL_TOKEN_TYPE = "gen_ai_token_type"
LABEL_STORE_OPERATION = "operation"
LABEL_STORE_BACKEND = "backend"
LABEL_SIGNAL = "signal"
LABEL_KIND = "kind"
LABEL_NAME = "name"
LABEL_OUTCOME = "outcome"

# Route label of WebSocket chat turns (`/v1/ws` and `/role/{name}`), each counted like one request.
WEBSOCKET_ROUTE = "ws"
WEBSOCKET_METHOD = "WS"
# Label value used for every path that matches no route template (bounded cardinality).
UNMATCHED_ROUTE = "<unmatched>"
# Label value for requests whose role is unknown or not yet known.
UNKNOWN_ROLE = "<unknown>"
# Label value for a role version that is not loaded (or not known): bounded like the roles.
OTHER_ROLE_VERSION = "<other>"

# --- bucket boundaries -------------------------------------------------------------
# OpenTelemetry GenAI semantic conventions, explicit bucket advice.
GENAI_TTFT_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)
GENAI_TPOT_BUCKETS: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
)
# The GenAI request-duration advice, plus an explicit bucket at the default SLO's end-to-end
# latency threshold (5.0 s) so burn-rate rules read an exact bucket instead of interpolating.
GENAI_DURATION_BUCKETS: tuple[float, ...] = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.0, 5.12, 10.24, 20.48, 40.96, 81.92,
)
# HTTP request durations share the request-duration boundaries (SLO threshold included).
HTTP_DURATION_BUCKETS: tuple[float, ...] = GENAI_DURATION_BUCKETS
# Session-store operations are local (SQLite) or one round trip (Redis): finer at the low end.
STORE_DURATION_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)

# Latency thresholds of the default SLO spec; each one is an explicit bucket boundary above.
DEFAULT_SLO_TTFT_SECONDS = 0.5
DEFAULT_SLO_REQUEST_DURATION_SECONDS = 5.0

# Label values of rolescope_role_reloads_total and rolescope_tls_reloads_total.
RELOAD_APPLIED = "applied"
RELOAD_REFUSED = "refused"
RELOAD_OUTCOMES: tuple[str, ...] = (RELOAD_APPLIED, RELOAD_REFUSED)
# Label values of rolescope_mirror_requests_total: answered (any status), no answer (connection
# refused, transport error), past its timeout, or not sent because the mirror's cap was full.
MIRROR_OK = "ok"
MIRROR_FAILED = "failed"
MIRROR_TIMEOUT = "timeout"
MIRROR_SHED = "shed"
MIRROR_OUTCOMES: tuple[str, ...] = (MIRROR_OK, MIRROR_FAILED, MIRROR_TIMEOUT, MIRROR_SHED)

# Label values of rolescope_telemetry_dropped_total.
SIGNAL_SPANS = "spans"
SIGNAL_CAPTURE = "capture"
DROP_REASON_QUEUE_FULL = "queue_full"
DROP_REASON_EXPORT_FAILED = "export_failed"
