"""Builds the parts of a role service from `Settings`, in the order their users need them.

Validation comes first (roles, API keys, ports: a bad one raises `ConfigError`
before anything process-wide is touched), then telemetry, then capture (whose
drops telemetry counts), and only then the chat service, which receives its one
observer and its store through its constructor. Nothing built here is patched
afterwards; resources open in the lifespan (`lifespan.py`).
"""

from __future__ import annotations

from collections.abc import Mapping

from rolescope.capture.wiring import build_capture
from rolescope.client_tls import ClientTls
from rolescope.errors import ConfigError
from rolescope.exporters.telemetry import Telemetry, start_telemetry
from rolescope.inference.base import InferenceBackend
from rolescope.memory.live import LiveMemoryMeter
from rolescope.memory.model import Baseline
from rolescope.mirroring.wiring import build_mirror
from rolescope.role_registry import RoleRegistry, as_registry
from rolescope.roles import Role, load_roles
from rolescope.service.admission import AdmissionLimiter
from rolescope.service.auth import ApiKeys
from rolescope.service.chat import ChatService
from rolescope.service.limits import Limits
from rolescope.service.observer import ChatObserver, CompositeObserver
from rolescope.service.role_catalog import RoleCatalog
from rolescope.service.shutdown import DrainSignal
from rolescope.service.ws_frames import parse_origins
from rolescope.service.ws_hub import OpenWebSockets, WsPolicy
from rolescope.serving.components import ServiceComponents
from rolescope.serving.reload import RoleReloader
from rolescope.settings import FaultSettings, Settings
from rolescope.storage.base import SessionStore


def build_backends(
    roles: Mapping[str, Role],
    faults: FaultSettings,
    *,
    previous: RoleCatalog | None = None,
    delays: bool = True,
) -> dict[str, InferenceBackend]:
    """One backend per role version (`name@version`); simulator roles share one simulator (one fault
    stream per process), except a version with faults of its own (`inference.faults`). With
    `previous` (a reload), its shared simulator and every HTTP backend whose endpoint is unchanged
    are kept, so connections and the fault stream carry on."""
    from rolescope.inference.openai_http import OpenAIHttpBackend
    from rolescope.inference.simulator import SimulatorBackend

    kept: dict[str, tuple[Role, InferenceBackend]] = {}
    simulator: SimulatorBackend | None = None
    if previous is not None:
        for old in previous.registry.all_versions():
            backend = previous.backend(old)
            kept[old.reference] = (old, backend)
            # The shared simulator, not one a version built for its own faults.
            own_faults = old.inference.faults is not None and old.inference.faults.as_settings().active
            if isinstance(backend, SimulatorBackend) and not own_faults:
                simulator = backend
    simulator = simulator or SimulatorBackend(faults, delays=delays)
    backends: dict[str, InferenceBackend] = {}
    for role in as_registry(roles).all_versions():
        if role.inference.backend == "openai":
            spec = role.inference
            assert spec.base_url is not None  # guaranteed by the role model
            old_role, old_backend = kept.get(role.reference, (None, None))
            if old_role is not None and old_backend is not None and _same_endpoint(old_role, role):
                backends[role.reference] = old_backend
                continue
            tls = ClientTls(ca_file=spec.ca_file, client_cert=spec.client_cert, client_key=spec.client_key)
            if problems := tls.problems(f"role {role.reference} inference"):
                raise ConfigError("; ".join(problems))
            backends[role.reference] = OpenAIHttpBackend.from_env(spec.base_url, spec.api_key_env, tls)
        elif role.inference.faults is not None and role.inference.faults.as_settings().active:
            backends[role.reference] = SimulatorBackend(
                faults.plus(role.inference.faults.as_settings()), delays=delays
            )
        else:
            backends[role.reference] = simulator
    return backends


def _same_endpoint(old: Role, new: Role) -> bool:
    return old.inference.backend == new.inference.backend and (
        old.inference.base_url,
        old.inference.api_key_env,
    ) == (new.inference.base_url, new.inference.api_key_env)


def build_store(settings: Settings, first_role: str) -> SessionStore:
    """The configured session store, not opened yet (the lifespan opens it)."""
    if settings.store == "redis":
        try:
            from rolescope.storage.redis_store import RedisSessionStore
        except ImportError as exc:
            raise ConfigError("store: `redis` is not available in this installation; use `sqlite`") from exc
        store: SessionStore = RedisSessionStore(settings.redis_url)
        return store
    from rolescope.storage.sqlite_store import SqliteSessionStore

    return SqliteSessionStore(settings.resolved_db_path(first_role), synchronous=settings.sqlite_synchronous)


def limits_from(settings: Settings) -> Limits:
    return Limits(
        max_body_bytes=settings.max_body_bytes,
        max_message_chars=settings.max_message_chars,
        max_output_tokens=settings.max_output_tokens,
        max_turns_per_session=settings.max_turns_per_session,
    )


def websocket_policy(settings: Settings) -> WsPolicy:
    return WsPolicy(
        idle_timeout_s=settings.ws_idle_timeout_s,
        send_queue_chars=settings.ws_send_queue_chars,
        max_frame_bytes=settings.max_body_bytes,
        allowed_origins=parse_origins(settings.ws_allowed_origins),
    )


def check_ports(settings: Settings) -> None:
    if settings.metrics_port is not None and settings.metrics_port == settings.port and settings.port != 0:
        raise ConfigError(
            f"metrics_port {settings.metrics_port} is the API port; choose another port or leave it unset"
        )


def one_observer(*observers: ChatObserver | None) -> ChatObserver | None:
    """The given observers as one, in order: None, the only one, or a composite of them all."""
    present = [o for o in observers if o is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else CompositeObserver(*present)


def _memory_meter(
    settings: Settings, roles: Mapping[str, Role], telemetry: Telemetry | None
) -> LiveMemoryMeter:
    assert settings.measure_memory_dir is not None

    def publish(baseline: Baseline) -> None:
        figures = baseline.kinds.get("all")
        if telemetry is None or figures is None:
            return
        telemetry.metrics.memory_allocations.labels("all").set(figures.allocations_per_request)
        telemetry.metrics.memory_bytes.labels("all").set(figures.bytes_per_request)

    return LiveMemoryMeter(settings.measure_memory_dir, {n: r.version for n, r in roles.items()}, publish)


def _reloader(settings: Settings, service: ChatService, telemetry: Telemetry | None) -> RoleReloader:
    def rebuild(registry: RoleRegistry[Role], previous: RoleCatalog) -> dict[str, InferenceBackend]:
        return build_backends(
            registry, settings.faults, previous=previous, delays=settings.simulator_delays
        )

    def relabel(registry: RoleRegistry[Role]) -> None:
        if telemetry is not None:
            # Every version a reload brings is a label value too, or its series would read `<other>`.
            every = registry.all_versions()
            telemetry.metrics.set_label_sets(
                registry, {r.inference.model for r in every}, [(r.name, r.version) for r in every]
            )

    return RoleReloader(
        service,
        settings.roles_path,
        rebuild,
        on_applied=relabel,
        count=telemetry.metrics.role_reload if telemetry is not None else _ignore_outcome,
        grace_s=settings.shutdown_timeout_s,
    )


def _ignore_outcome(outcome: str) -> None:
    return None


def _ignore_mirror(outcome: str, seconds: float | None) -> None:
    return None


def _ignore_drop(signal: str, reason: str, amount: int) -> None:
    return None


def build_components(
    settings: Settings,
    *,
    version: str,
    observer: ChatObserver | None = None,
    roles: Mapping[str, Role] | None = None,
    store: SessionStore | None = None,
) -> ServiceComponents:
    """Every part of one app. `observer` joins capture and metrics; `roles` and `store` replace the
    configured ones."""
    # A plain dict would keep only each role's default version.
    roles = as_registry(roles) if roles is not None else load_roles(settings.roles_path)
    api_keys = ApiKeys.load(settings.api_keys, settings.api_keys_file)
    check_ports(settings)
    store = store or build_store(settings, next(iter(roles)))
    backends = build_backends(roles, settings.faults, delays=settings.simulator_delays)
    telemetry = (
        start_telemetry(
            roles,
            version=version,
            concurrency_limit=settings.concurrency_limit,
            json_logs=settings.log_format == "json",
            log_level=settings.log_level,
        )
        if settings.telemetry
        else None
    )
    # Shadow-traffic capture (opt-in) counts the records it drops on the service metrics.
    capture = build_capture(settings, telemetry.metrics.count_dropped if telemetry else _ignore_drop)
    # Shadow mirroring answers candidates through the chat service, which is built after its observers.
    mirror = build_mirror(
        settings,
        lambda: service,
        telemetry.metrics.mirror_request if telemetry else _ignore_mirror,
        telemetry.metrics.count_dropped if telemetry else _ignore_drop,
    )
    service = ChatService(
        roles,
        backends,
        store,
        observer=one_observer(observer, capture, mirror, telemetry.metrics if telemetry else None),
        max_message_chars=settings.max_message_chars,
        limits=limits_from(settings),
    )
    admission = AdmissionLimiter(settings.concurrency_limit) if settings.concurrency_limit > 0 else None
    return ServiceComponents(
        chat_service=service,
        drain=DrainSignal.for_shutdown_timeout(settings.shutdown_timeout_s),
        websockets=OpenWebSockets(
            websocket_policy(settings), admission, telemetry.metrics.rejected if telemetry else None
        ),
        admission=admission,
        settings=settings,
        store=store,
        api_keys=api_keys,
        telemetry=telemetry,
        capture=capture,
        memory_meter=_memory_meter(settings, roles, telemetry) if settings.measure_memory_dir else None,
        reloader=_reloader(settings, service, telemetry),
        mirror=mirror,
    )
