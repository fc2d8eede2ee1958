"""Metrics on a port of their own (`metrics_port`): the scrape server, and a 404 for `/metrics` on the API."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.types import ASGIApp, Receive, Scope, Send

from rolescope.exporters.exposition import METRICS_PATH, multiprocess_registry
from rolescope.exporters.metrics import MULTIPROC_ENV, ServiceMetrics
from rolescope.service.errors import error_body
from rolescope.settings import Settings

logger = logging.getLogger("rolescope.service")
_SERVED_ELSEWHERE = json.dumps(error_body("not_found", "metrics are served on the metrics port")).encode()


class HideMetrics:
    """404 for `/metrics` on the API port when metrics are served on a port of their own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") == METRICS_PATH:
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": _SERVED_ELSEWHERE})
            return
        await self.app(scope, receive, send)


@contextmanager
def metrics_port_served(settings: Settings, metrics: ServiceMetrics | None) -> Iterator[None]:
    """Serve the metrics registry on `metrics_port` (a thread; in multi-worker mode one worker wins)."""
    if settings.metrics_port is None:
        yield
        return
    from prometheus_client import start_http_server

    directory = os.environ.get(MULTIPROC_ENV)
    registry = multiprocess_registry(directory) if directory else metrics.registry if metrics else None
    if registry is None:
        logger.warning("metrics_port is set but telemetry is not installed; nothing to serve")
        yield
        return
    try:
        server, _thread = start_http_server(settings.metrics_port, addr=settings.host, registry=registry)
    except OSError:
        # Another worker of this server already serves the shared registry on that port.
        with contextlib.suppress(Exception):
            logger.info("metrics port %s already served by another worker", settings.metrics_port)
        yield
        return
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
