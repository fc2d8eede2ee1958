"""The FastAPI application factory: the composed parts as one ASGI app.

`create_app(settings)` validates everything before returning (a bad role file
raises `ConfigError` here, so the service refuses to start and says why). The
parts are built first (`wiring.build_components`), stored once as
`app.state.components`, and their resources open in the one lifespan
(`lifespan.service_lifespan`), so one app object can be created, inspected and
served later.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from rolescope.roles import Role
from rolescope.service import openai_compat, routes, websocket
from rolescope.service.error_handlers import install_error_handlers
from rolescope.service.observer import ChatObserver
from rolescope.serving.components import components_of
from rolescope.serving.heap import freeze_startup_heap
from rolescope.serving.lifespan import service_lifespan
from rolescope.serving.middleware_stack import install_middleware
from rolescope.serving.reload_signal import defer_hangup_until_served
from rolescope.serving.wiring import build_components
from rolescope.settings import Settings
from rolescope.storage.base import SessionStore


def _package_version() -> str:
    try:
        return version("rolescope")
    except PackageNotFoundError:
        return "0.0.0"


def create_app(
    settings: Settings | None = None,
    *,
    observer: ChatObserver | None = None,
    roles: Mapping[str, Role] | None = None,
    store: SessionStore | None = None,
) -> FastAPI:
    """The role service. `observer` joins its observers (before capture and metrics); `roles` and `store`
    replace the configured ones."""
    settings = settings or Settings()
    package_version = _package_version()
    components = build_components(
        settings, version=package_version, observer=observer, roles=roles, store=store
    )
    app = FastAPI(
        title="rolescope role service",
        version=package_version,
        description="Role-play chat with personas defined in YAML: JSON or SSE answers, session memory, "
        "and an OpenAI-compatible `/v1/chat/completions` for model-server benchmark tools.",
        lifespan=lambda _app: service_lifespan(components),
    )
    app.state.components = components
    install_error_handlers(app)
    app.include_router(routes.router)
    app.include_router(openai_compat.router)
    app.include_router(websocket.router)
    install_middleware(app, components)
    return app


def running(app: FastAPI) -> AbstractAsyncContextManager[None]:
    """The app's one lifespan, for driving it without a server (the in-process memory replay)."""
    return service_lifespan(components_of(app))


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` and multi-worker serving: settings come from ROLESCOPE_* variables."""
    defer_hangup_until_served()
    app = create_app(Settings())
    freeze_startup_heap()  # each worker process, as the single-process server does once it listens
    return app
