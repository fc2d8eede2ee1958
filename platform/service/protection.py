"""Wires the service's protections into an app: API keys, admission, body limit, drain, metrics port.

Called once from `create_app`'s `_install_middleware`. Order matters: Starlette
runs the last middleware added first, so the stack is, outermost first,
API keys (refuse strangers before they take a slot) → admission (503 beyond the
limit) → body size (413) → `Allow` on 405 → the app. Everything is validated here, at start-up:
an unreadable keys file or a bad limit stops the service with one clear sentence.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from rolescope.errors import ConfigError
from rolescope.service.admission import AdmissionMiddleware
from rolescope.service.allow_header import AllowHeaderMiddleware
from rolescope.service.auth import ApiKeyMiddleware, ApiKeys
from rolescope.service.limits import BodySizeLimitMiddleware, Limits
from rolescope.service.log_privacy import install_access_log_redaction
from rolescope.service.shutdown import DRAIN, install_exit_hook, stream_backstop_s, stream_grace_s
from rolescope.settings import Settings

logger = logging.getLogger("rolescope.service")

METRICS_PATH = "/metrics"


def rejection_counter(app: FastAPI) -> Callable[[str], None]:
    """Counts a refusal in `rolescope_http_requests_rejected_total{reason}` once telemetry is installed."""

    def count(reason: str) -> None:
        telemetry = getattr(app.state, "telemetry", None)
        metrics = getattr(telemetry, "metrics", None)
        if metrics is not None:
            metrics.rejected(reason)

    return count


class HideMetrics:
    """404 for `/metrics` on the API port when metrics are served on a port of their own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") == METRICS_PATH:
            body = b'{"error": {"code": "not_found", "message": "metrics are served on the metrics port"}}'
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def limits_from(settings: Settings) -> Limits:
    return Limits(
        max_body_bytes=settings.max_body_bytes,
        max_message_chars=settings.max_message_chars,
        max_output_tokens=settings.max_output_tokens,
        max_turns_per_session=settings.max_turns_per_session,
    )


def install_protection(app: FastAPI, settings: Settings) -> None:
    keys = ApiKeys.load(settings.api_keys, settings.api_keys_file)
    count = rejection_counter(app)
    app.add_middleware(AllowHeaderMiddleware, routes=app.router.routes)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes, on_reject=count)
    app.add_middleware(AdmissionMiddleware, limit=settings.concurrency_limit, on_reject=count)
    if keys.enabled:
        app.add_middleware(ApiKeyMiddleware, keys=keys)
    if settings.metrics_port is not None:
        if settings.metrics_port == settings.port and settings.port != 0:
            raise ConfigError(
                f"metrics_port {settings.metrics_port} is the API port; choose another port or leave it unset"
            )
        app.add_middleware(HideMetrics)
    app.state.api_keys_enabled = keys.enabled
    DRAIN.reset()
    DRAIN.grace_s = stream_grace_s(settings.shutdown_timeout_s)
    DRAIN.backstop_s = stream_backstop_s(settings.shutdown_timeout_s)
    install_exit_hook(DRAIN)
    install_access_log_redaction()
    _extend_lifespan(app, settings)


def _extend_lifespan(app: FastAPI, settings: Settings) -> None:
    original = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(inner_app: Any) -> AsyncIterator[Any]:
        async with original(inner_app) as state:
            server = _start_metrics_server(app, settings)
            try:
                yield state
            finally:
                if server is not None:
                    server.shutdown()
                    server.server_close()

    app.router.lifespan_context = lifespan


def _start_metrics_server(app: FastAPI, settings: Settings) -> Any:
    """Serve the metrics registry on `metrics_port` (a thread; in multi-worker mode one worker wins)."""
    if settings.metrics_port is None:
        return None
    from prometheus_client import start_http_server

    from rolescope.exporters.exposition import multiprocess_registry
    from rolescope.exporters.metrics import MULTIPROC_ENV

    directory = os.environ.get(MULTIPROC_ENV)
    metrics = getattr(getattr(app.state, "telemetry", None), "metrics", None)
    registry = multiprocess_registry(directory) if directory else getattr(metrics, "registry", None)
    if registry is None:
        logger.warning("metrics_port is set but telemetry is not installed; nothing to serve")
        return None
    try:
        server, _thread = start_http_server(settings.metrics_port, addr=settings.host, registry=registry)
    except OSError:
        # Another worker of this server already serves the shared registry on that port.
        with contextlib.suppress(Exception):
            logger.info("metrics port %s already served by another worker", settings.metrics_port)
        return None
    return server
