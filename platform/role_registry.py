"""Every loaded version of every role, and which one a request means.

Several versions of one role load side by side (`sherlock` 1.2 and 1.3 from two
files). A request names a role (`sherlock`, answered by its default version) or
pins one version (`sherlock@1.3`). The default is the highest version unless
one is configured. Versions compare as numbers, part by part, so 1.10 is above
1.9 and 1.2 is the same version as 1.2.0.

As a `Mapping` the registry maps each name to its default version, in the order
the names were first loaded, so code that only knows about one version per role
keeps working unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol, TypeVar

VERSION_SEPARATOR = "@"
VERSION_PATTERN = r"^\d+(\.\d+){0,2}$"


class UnknownRoleReference(LookupError):
    """A request named a role or a version that is not loaded; the message lists what is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def version_key(version: str) -> tuple[int, ...]:
    """`"1.2"` → `(1, 2, 0)`: numeric parts, padded so that 1.2 and 1.2.0 are one version."""
    parts = tuple(int(part) for part in version.split("."))
    return parts + (0,) * (3 - len(parts))


def split_reference(reference: str) -> tuple[str, str | None]:
    """`"sherlock@1.3"` → `("sherlock", "1.3")`; `"sherlock"` → `("sherlock", None)`."""
    name, separator, version = reference.partition(VERSION_SEPARATOR)
    return name, (version if separator else None)


def _parsed_version(text: str) -> tuple[int, ...] | None:
    return version_key(text) if re.fullmatch(VERSION_PATTERN, text) else None


class VersionedRole(Protocol):
    """What the registry needs of a role (`rolescope.roles.Role` has it); the registry stays pure."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...


Role = TypeVar("Role", bound=VersionedRole)


class RoleRegistry(Mapping[str, Role]):
    """Roles by name and version, with one default version per name."""

    def __init__(self, roles: Iterable[Role], *, defaults: Mapping[str, str] | None = None) -> None:
        self._versions: dict[str, dict[tuple[int, ...], Role]] = {}
        for role in roles:
            versions = self._versions.setdefault(role.name, {})
            key = version_key(role.version)
            if key in versions:
                raise ValueError(
                    f"role {role.name!r} version {role.version} is loaded twice "
                    f"(as {versions[key].version} and {role.version})"
                )
            versions[key] = role
        for name in self._versions:
            self._versions[name] = dict(sorted(self._versions[name].items()))
        self._defaults = {name: versions[max(versions)] for name, versions in self._versions.items()}
        for name, version in (defaults or {}).items():
            self._defaults[name] = self._configured_default(name, version)

    def _configured_default(self, name: str, version: str) -> Role:
        if name not in self._versions:
            raise ValueError(f"a default version is set for role {name!r}, which is not loaded")
        key = _parsed_version(version)
        if key is None or key not in self._versions[name]:
            raise ValueError(
                f"the default version of role {name!r} is set to {version!r}; "
                f"loaded versions: {self._listed(name)}"
            )
        return self._versions[name][key]

    def __getitem__(self, name: str) -> Role:
        return self._defaults[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._defaults)

    def __len__(self) -> int:
        return len(self._defaults)

    def versions(self, name: str) -> tuple[Role, ...]:
        """Every loaded version of `name`, lowest first; empty when the name is not loaded."""
        return tuple(self._versions.get(name, {}).values())

    def all_versions(self) -> tuple[Role, ...]:
        """Every loaded role version: names in load order, versions lowest first."""
        return tuple(role for name in self._versions for role in self._versions[name].values())

    def is_default(self, role: Role) -> bool:
        return self._defaults.get(role.name) is role

    def _listed(self, name: str) -> str:
        return ", ".join(role.version for role in self._versions[name].values())

    def resolve(self, reference: str) -> Role:
        """The role a request names: `name` (its default version) or `name@version` (that version)."""
        name, version = split_reference(reference)
        if name not in self._versions:
            raise UnknownRoleReference(
                f"unknown role {name!r}; this service serves: {', '.join(sorted(self._versions))}"
            )
        if version is None:
            return self._defaults[name]
        key = _parsed_version(version)
        role = self._versions[name].get(key) if key is not None else None
        if role is None:
            raise UnknownRoleReference(
                f"role {name!r} has no version {version!r}; loaded versions: {self._listed(name)}"
            )
        return role


def as_registry(roles: Mapping[str, Role]) -> RoleRegistry[Role]:
    """A registry as it is, or a plain name → role mapping (one version each) as a registry."""
    return roles if isinstance(roles, RoleRegistry) else RoleRegistry(roles.values())
