"""Every part of one role-service app, built once by `wiring.build_components`.

Stored as `app.state.components`; the routes see it through its base,
`rolescope.service.context.ServiceContext` (the chat service and the drain
signal), and the composition root reads the rest from it: no attribute is
fished out of `app.state` anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import FastAPI

from rolescope.capture.observer import CaptureObserver
from rolescope.exporters.metrics import ServiceMetrics
from rolescope.exporters.telemetry import Telemetry
from rolescope.inference.base import InferenceBackend
from rolescope.memory.live import LiveMemoryMeter
from rolescope.mirroring.mirror import Mirror
from rolescope.role_registry import RoleRegistry
from rolescope.roles import Role
from rolescope.service.admission import AdmissionLimiter
from rolescope.service.auth import ApiKeys
from rolescope.service.context import ServiceContext
from rolescope.serving.reload import RoleReloader
from rolescope.settings import Settings
from rolescope.storage.base import SessionStore


@dataclass(kw_only=True)
class ServiceComponents(ServiceContext):
    settings: Settings
    store: SessionStore  # the bare store; the chat service times its calls
    api_keys: ApiKeys
    telemetry: Telemetry | None  # None with `telemetry=False`
    capture: CaptureObserver | None  # None unless shadow-traffic capture is on
    memory_meter: LiveMemoryMeter | None  # None unless `measure_memory_dir` is set
    admission: AdmissionLimiter | None = None  # chats in flight, HTTP and WebSocket; None = no limit
    reloader: RoleReloader  # SIGHUP and `--watch` swap the chat service's roles through it
    mirror: Mirror  # shadow mirroring for roles with a `mirror:` section

    @property
    def roles(self) -> RoleRegistry[Role]:
        """The roles served now (a reload replaces them)."""
        return self.chat_service.roles

    @property
    def backends(self) -> Mapping[str, InferenceBackend]:
        return self.chat_service.catalog.backends

    @property
    def metrics(self) -> ServiceMetrics | None:
        return self.telemetry.metrics if self.telemetry is not None else None

    def distinct_backends(self) -> list[InferenceBackend]:
        """Each backend once (simulator roles share one), those of removed versions still draining too."""
        return self.chat_service.catalog.distinct_backends()


def components_of(app: FastAPI) -> ServiceComponents:
    components = app.state.components
    if not isinstance(components, ServiceComponents):
        raise TypeError(f"app.state.components is a {type(components).__name__}, not ServiceComponents")
    return components
