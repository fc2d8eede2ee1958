"""rolescope's telemetry for the role service, as parts the composition root attaches.

`rolescope.serving` calls, in this order:

- `start_telemetry` before the chat service exists: the `ServiceMetrics` it
  returns is the chat observer (and counts capture drops), labelled with the
  loaded roles and their models; the OpenTelemetry SDK is installed when an
  `OTEL_*` endpoint is set;
- `attach_http` once the app exists: one pure ASGI middleware for HTTP metrics
  and the server span (outermost but for the memory meter, so it also sees
  requests the limits refuse) and `GET /metrics`;
- `Telemetry.close` from the app's lifespan, at shutdown: flush spans.

Nothing here patches the app or the chat service after they are built.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from rolescope.exporters import names
from rolescope.exporters.exposition import METRICS_PATH, mark_worker_dead, metrics_endpoint
from rolescope.exporters.logging import configure_json_logging
from rolescope.exporters.metrics import ServiceMetrics
from rolescope.exporters.middleware import TelemetryMiddleware
from rolescope.exporters.tracing import install_tracing, shutdown_tracing
from rolescope.role_registry import as_registry
from rolescope.roles import Role

log = logging.getLogger(__name__)

# One SDK provider per process: the OpenTelemetry API lets the global provider be set once.
_process_provider: list[TracerProvider | None] = []


@dataclass
class Telemetry:
    metrics: ServiceMetrics
    tracer_provider: TracerProvider | None

    def close(self) -> None:
        """Export the spans still queued and mark this worker's metric files as dead."""
        shutdown_tracing(self.tracer_provider)
        mark_worker_dead(os.getpid())


def _tracing_once(metrics: ServiceMetrics, environ: Mapping[str, str], version: str) -> TracerProvider | None:
    if not _process_provider:

        def on_drop(reason: str, spans: int) -> None:
            metrics.count_dropped(names.SIGNAL_SPANS, reason, spans)

        _process_provider.append(install_tracing(environ, on_drop, version))
    return _process_provider[0]


def start_telemetry(
    roles: Mapping[str, Role],
    *,
    version: str,
    concurrency_limit: int = 0,
    json_logs: bool = True,
    log_level: str = "warning",
    environ: Mapping[str, str] | None = None,
) -> Telemetry:
    """Service metrics labelled for `roles`, their versions and models; tracing from `OTEL_*`; JSON logs."""
    environ = os.environ if environ is None else environ
    if json_logs:
        configure_json_logging(log_level)
    # Every loaded version's model: a pinned non-default version must not be labelled `<other>`.
    every_version = as_registry(roles).all_versions()
    models = _models_of(every_version)
    role_versions = [(role.name, role.version) for role in every_version]
    metrics = ServiceMetrics(roles=roles, models=models, role_versions=role_versions, version=version)
    metrics.concurrency_limit.set(concurrency_limit)
    return Telemetry(metrics, _tracing_once(metrics, environ, version))


def _models_of(roles: Iterable[Role]) -> set[str]:
    return {role.inference.model for role in roles}


def attach_http(app: FastAPI, telemetry: Telemetry) -> None:
    """The HTTP metrics / server-span middleware and `GET /metrics` on `app`."""
    _disable_native_fastapi_telemetry(app)
    app.add_middleware(
        TelemetryMiddleware, metrics=telemetry.metrics, tracer_provider=telemetry.tracer_provider
    )
    app.add_route(METRICS_PATH, metrics_endpoint(telemetry.metrics.registry), include_in_schema=False)


def _disable_native_fastapi_telemetry(app: FastAPI) -> None:
    """Newer FastAPI releases trace by themselves once a global provider exists: a second server
    span and two operation spans per request. rolescope's middleware gives the one server span."""
    native = getattr(app, "_telemetry", None)
    if isinstance(native, dict):
        native.update(tracing=False, metrics=False, logs=False)
