"""The roles a chat service answers for, and the backend of each version, as one immutable value.

A hot reload replaces the whole catalog in one assignment, so a request sees
either the old roles and backends or the new ones, never a mix. A request
resolves its `Role` once; a version that a reload removed keeps its backend
reachable through `retired` until the requests still running on it are done,
while no new request can resolve it any more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rolescope.inference.base import InferenceBackend
from rolescope.role_registry import RoleRegistry
from rolescope.roles import Role


@dataclass(frozen=True)
class RoleCatalog:
    registry: RoleRegistry[Role]
    backends: Mapping[str, InferenceBackend]  # by `name@version` (or by name, for hand-built services)
    retired: Mapping[str, InferenceBackend] = field(default_factory=dict)  # removed versions, draining

    def backend(self, role: Role) -> InferenceBackend:
        for backends in (self.backends, self.retired):
            backend = backends.get(role.reference)
            if backend is not None:
                return backend
        return self.backends[role.name]

    def distinct_backends(self) -> list[InferenceBackend]:
        """Each backend once, the draining ones too (simulator roles share one)."""
        every = [*self.backends.values(), *self.retired.values()]
        return list({id(b): b for b in every}.values())
