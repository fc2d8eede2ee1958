"""Plugs rolescope's telemetry into a role-service app: metrics, `/metrics`, spans, flush on exit.

`create_app` calls `install_telemetry` from its `_install_telemetry` hook. What
gets installed:

- `ServiceMetrics` as the chat observer (composed with any observer given to
  `create_app`), labelled with the loaded roles and their models;
- one pure ASGI middleware for HTTP metrics and the server span (outermost, so it
  also sees requests the limits refuse);
- `GET /metrics`;
- the OpenTelemetry SDK when an `OTEL_*` endpoint is set, flushed at shutdown.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from rolescope.exporters import names
from rolescope.exporters.exposition import METRICS_PATH, mark_worker_dead, metrics_endpoint
from rolescope.exporters.logging import configure_json_logging
from rolescope.exporters.metrics import ServiceMetrics
from rolescope.exporters.middleware import TelemetryMiddleware
from rolescope.exporters.tracing import install_tracing, shutdown_tracing

log = logging.getLogger(__name__)

# One SDK provider per process: the OpenTelemetry API lets the global provider be set once.
_process_provider: list[TracerProvider | None] = []


@dataclass
class Telemetry:
    metrics: ServiceMetrics
    tracer_provider: TracerProvider | None


def _tracing_once(metrics: ServiceMetrics, environ: Mapping[str, str], version: str) -> TracerProvider | None:
    if not _process_provider:

        def on_drop(reason: str, spans: int) -> None:
            metrics.count_dropped(names.SIGNAL_SPANS, reason, spans)

        _process_provider.append(install_tracing(environ, on_drop, version))
    return _process_provider[0]


def _compose(service: Any, metrics: ServiceMetrics) -> None:
    """Make `metrics` the service's observer, keeping an observer that was given explicitly."""
    from rolescope.service.observer import CompositeObserver, NullObserver
    from rolescope.service.store_calls import TimedStore

    current = service.observer
    # Only the bare default is replaced; a subclass overrides some hooks and is kept.
    observer = metrics if type(current) is NullObserver else CompositeObserver(current, metrics)
    service.observer = observer
    service.store = TimedStore(service.store.inner, observer)


def install_telemetry(
    app: FastAPI,
    service: Any,
    *,
    concurrency_limit: int = 0,
    json_logs: bool = True,
    log_level: str = "warning",
    environ: Mapping[str, str] | None = None,
) -> Telemetry:
    """Install metrics, `/metrics`, tracing and JSON logs on `app` (built by `create_app`)."""
    environ = os.environ if environ is None else environ
    if json_logs:
        configure_json_logging(log_level)
    roles = service.roles
    metrics = ServiceMetrics(
        roles=roles, models={role.inference.model for role in roles.all_versions()}, version=app.version
    )
    metrics.concurrency_limit.set(concurrency_limit)
    _compose(service, metrics)
    provider = _tracing_once(metrics, environ, app.version)

    _disable_native_fastapi_telemetry(app)
    app.add_middleware(TelemetryMiddleware, metrics=metrics, tracer_provider=provider)
    app.add_route(METRICS_PATH, metrics_endpoint(metrics.registry), include_in_schema=False)
    _flush_at_shutdown(app, provider)
    app.state.metrics = metrics  # shadow-traffic capture counts its drops here
    app.state.telemetry = Telemetry(metrics, provider)
    return app.state.telemetry  # type: ignore[no-any-return]


def _disable_native_fastapi_telemetry(app: FastAPI) -> None:
    """Newer FastAPI releases trace by themselves once a global provider exists: a second server
    span and two operation spans per request. rolescope's middleware gives the one server span."""
    native = getattr(app, "_telemetry", None)
    if isinstance(native, dict):
        native.update(tracing=False, metrics=False, logs=False)


def _flush_at_shutdown(app: FastAPI, provider: TracerProvider | None) -> None:
    original = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(inner_app: Any) -> AsyncIterator[Any]:
        async with original(inner_app) as state:
            try:
                yield state
            finally:
                shutdown_tracing(provider)
                mark_worker_dead(os.getpid())

    app.router.lifespan_context = lifespan
