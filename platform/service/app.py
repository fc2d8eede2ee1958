"""The FastAPI application factory: roles, backends and store wired into one ASGI app.

`create_app(settings)` validates everything before returning (a bad role file
raises `ConfigError` here, so the service refuses to start and says why). Store
connections open in the lifespan, so one app object can be created, inspected and
served later. Telemetry plugs in at `_install_telemetry` and HTTP middleware at
`_install_middleware`, each in one place.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from rolescope.capture.wiring import build_capture, late_drop_counter, with_capture
from rolescope.errors import ConfigError
from rolescope.inference.base import InferenceBackend
from rolescope.role_registry import as_registry
from rolescope.roles import Role, load_roles
from rolescope.service import openai_compat, routes
from rolescope.service.chat import ChatService
from rolescope.service.error_handlers import install_error_handlers
from rolescope.service.observer import ChatObserver
from rolescope.service.protection import install_protection, limits_from
from rolescope.settings import FaultSettings, Settings
from rolescope.storage.base import SessionStore

logger = logging.getLogger("rolescope.service")


def _package_version() -> str:
    try:
        return version("rolescope")
    except PackageNotFoundError:
        return "0.0.0"


def build_backends(roles: Mapping[str, Role], faults: FaultSettings) -> dict[str, InferenceBackend]:
    """One backend per role version (`name@version`); simulator roles share one simulator (one fault
    stream per process)."""
    from rolescope.inference.openai_http import OpenAIHttpBackend
    from rolescope.inference.simulator import SimulatorBackend

    simulator = SimulatorBackend(faults)
    backends: dict[str, InferenceBackend] = {}
    for role in as_registry(roles).all_versions():
        if role.inference.backend == "openai":
            assert role.inference.base_url is not None  # guaranteed by the role model
            backends[role.reference] = OpenAIHttpBackend.from_env(
                role.inference.base_url, role.inference.api_key_env
            )
        else:
            backends[role.reference] = simulator
    return backends


def build_store(settings: Settings, first_role: str) -> SessionStore:
    if settings.store == "redis":
        try:
            from rolescope.storage.redis_store import RedisSessionStore
        except ImportError as exc:
            raise ConfigError("store: `redis` is not available in this installation; use `sqlite`") from exc
        store: SessionStore = RedisSessionStore(settings.redis_url)
        return store
    from rolescope.storage.sqlite_store import SqliteSessionStore

    return SqliteSessionStore(settings.resolved_db_path(first_role), synchronous=settings.sqlite_synchronous)


def _install_middleware(app: FastAPI, settings: Settings) -> None:
    """Every HTTP middleware, in one place. Starlette runs the last one added first (outermost)."""
    # API keys, admission (503), body size (413), drain on SIGTERM, metrics port.
    install_protection(app, settings)


def _install_telemetry(app: FastAPI, settings: Settings) -> None:
    """Metrics middleware, `/metrics` and tracing (from `OTEL_*`); `telemetry=False` installs none."""
    if not settings.telemetry:
        return
    from rolescope.exporters.telemetry import install_telemetry

    install_telemetry(
        app,
        app.state.chat_service,
        concurrency_limit=settings.concurrency_limit,
        json_logs=settings.log_format == "json",
        log_level=settings.log_level,
    )


def create_app(
    settings: Settings | None = None,
    *,
    observer: ChatObserver | None = None,
    roles: Mapping[str, Role] | None = None,
    store: SessionStore | None = None,
) -> FastAPI:
    settings = settings or Settings()
    roles = as_registry(roles) if roles is not None else load_roles(settings.roles_path)
    first_role = next(iter(roles))
    store = store or build_store(settings, first_role)
    backends = build_backends(roles, settings.faults)
    # Shadow-traffic capture (opt-in); drops are counted on the service metrics once telemetry is installed.
    capture = build_capture(
        settings,
        late_drop_counter(lambda: getattr(getattr(app.state, "metrics", None), "count_dropped", None)),
    )
    observer = with_capture(observer, capture)
    service = ChatService(
        roles,
        backends,
        store,
        observer=observer,
        max_message_chars=settings.max_message_chars,
        limits=limits_from(settings),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.open()
        if capture is not None:
            capture.start()
        try:
            yield
        finally:
            if capture is not None:
                capture.close()
            for backend in {id(b): b for b in backends.values()}.values():
                await backend.aclose()
            await store.close()

    app = FastAPI(
        title="rolescope role service",
        version=_package_version(),
        description="Role-play chat with personas defined in YAML: JSON or SSE answers, session memory, "
        "and an OpenAI-compatible `/v1/chat/completions` for model-server benchmark tools.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.chat_service = service
    install_error_handlers(app)
    app.include_router(routes.router)
    app.include_router(openai_compat.router)
    _install_middleware(app, settings)
    _install_telemetry(app, settings)
    if settings.measure_memory_dir is not None:
        from rolescope.memory.live import install_memory_meter

        install_memory_meter(app, settings.measure_memory_dir, {n: r.version for n, r in roles.items()})
    return app


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` and multi-worker serving: settings come from ROLESCOPE_* variables."""
    from rolescope.service.server import freeze_startup_heap

    app = create_app(Settings())
    freeze_startup_heap()  # each worker process, as the single-process server does once it listens
    return app
