"""A role's shadow-mirroring policy (the role file's top-level `mirror:` section), as a strict model.

    mirror:
      to: sherlock@1.3            # another loaded version of a role, or http(s)://host:port
      share: 0.1                  # share of requests mirrored, 0-1
      max_concurrency: 8          # mirrored requests running at once; more are shed and counted
      timeout_ms: 5000            # a mirrored request running longer is cancelled and counted

Pure: the role model imports it, and whether `to` names a loaded version is
checked where every role is known (start-up and each reload).
"""

from __future__ import annotations

import re
from typing import Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rolescope.role_registry import VERSION_PATTERN, VERSION_SEPARATOR, RoleRegistry, VersionedRole

_URL = re.compile(r"^https?://[^\s/]+(/[^\s]*)?$")
_REFERENCE = re.compile(r"^[a-z][a-z0-9_-]{0,62}" + re.escape(VERSION_SEPARATOR) + VERSION_PATTERN[1:])


class MirrorPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    to: str = Field(description="`name@version` of a loaded role version, or an http(s):// base URL")
    share: float = Field(default=0.1, ge=0, le=1, description="share of requests mirrored")
    max_concurrency: int = Field(default=8, ge=1, le=1024, description="mirrored requests at once")
    timeout_ms: int = Field(default=5000, ge=1, le=600_000)

    @field_validator("to")
    @classmethod
    def _target(cls, value: str) -> str:
        if not (_URL.match(value) or _REFERENCE.match(value)):
            raise ValueError(
                f"expected `name@version` (a loaded role version) or an http(s):// URL, got {value!r}"
            )
        return value.rstrip("/")

    @property
    def is_url(self) -> bool:
        return bool(_URL.match(self.to))


class MirroredRole(VersionedRole, Protocol):
    @property
    def reference(self) -> str: ...

    @property
    def mirror(self) -> MirrorPolicy | None: ...


Mirrored = TypeVar("Mirrored", bound=MirroredRole)


def mirror_target_problems(registry: RoleRegistry[Mirrored]) -> list[str]:
    """Every `mirror.to` that names no loaded version, or the role version itself."""
    problems: list[str] = []
    for role in registry.all_versions():
        policy = role.mirror
        if policy is None or policy.is_url:
            continue
        if policy.to == role.reference:
            problems.append(f"role {role.reference}: mirror.to names the role version itself")
            continue
        try:
            registry.resolve(policy.to)
        except LookupError as exc:
            problems.append(f"role {role.reference}: mirror.to {policy.to!r}: {exc}")
    return problems
