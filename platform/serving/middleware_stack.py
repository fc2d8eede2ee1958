"""Every HTTP middleware of the role service, added in one place and one order.

Starlette runs the last middleware added first, so the stack is, outermost first:
the memory meter's request counter (when measuring) → telemetry (HTTP metrics
and the server span, so it also sees refused requests) → `/metrics` hidden on
the API port (with a metrics port) → API keys (refuse strangers before they take
a slot) → the client certificate's principal as owner (with a client CA) →
admission (503 beyond the limit) → body size (413) → `Allow` on 405 → the app.
Everything they need was validated when the components were built.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from rolescope.exporters.telemetry import attach_http
from rolescope.memory.live import MemoryCountingMiddleware
from rolescope.service.admission import AdmissionMiddleware
from rolescope.service.allow_header import AllowHeaderMiddleware
from rolescope.service.auth import ApiKeyMiddleware
from rolescope.service.limits import BodySizeLimitMiddleware
from rolescope.service.log_privacy import install_access_log_redaction
from rolescope.service.peer_identity import CertificateOwnerMiddleware
from rolescope.serving.components import ServiceComponents
from rolescope.serving.metrics_port import HideMetrics


def _uncounted(reason: str) -> None:
    return None


def install_middleware(app: FastAPI, components: ServiceComponents) -> None:
    settings = components.settings
    metrics = components.metrics
    # Refusals are counted in `rolescope_http_requests_rejected_total{reason}` when telemetry is on.
    count_rejection: Callable[[str], None] = metrics.rejected if metrics is not None else _uncounted
    app.add_middleware(AllowHeaderMiddleware, routes=app.router.routes)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes, on_reject=count_rejection)
    app.add_middleware(
        AdmissionMiddleware,
        limit=settings.concurrency_limit,
        on_reject=count_rejection,
        limiter=components.admission,
    )
    if settings.tls_client_ca is not None:
        # Inside the API-key check: with both on, both are required and the certificate names the owner.
        app.add_middleware(CertificateOwnerMiddleware)
    if components.api_keys.enabled:
        app.add_middleware(ApiKeyMiddleware, keys=components.api_keys)
    if settings.metrics_port is not None:
        app.add_middleware(HideMetrics)
    install_access_log_redaction()
    if components.telemetry is not None:
        attach_http(app, components.telemetry)
    if components.memory_meter is not None:
        app.add_middleware(MemoryCountingMiddleware, meter=components.memory_meter)
