"""Which loaded version of a role answers a request: a pin, else the role's release policy.

In order: a version in the reference (`sherlock@1.3`), the `X-Role-Version`
header, the release policy's header and cookie rules, then its sticky weight
split over the session id. A role without a `release:` section is answered by
its default version. The chosen version is not stored with the session: the
split hashes the session id on every turn, which keeps a session on one version
and lets replicas agree without sharing state.
"""

from __future__ import annotations

from collections.abc import Mapping

from rolescope.release_policy import VERSION_HEADER, ReleaseSpec, decide
from rolescope.role_registry import VERSION_SEPARATOR, RoleRegistry, split_reference
from rolescope.roles import Role


def release_of(registry: RoleRegistry[Role], name: str) -> ReleaseSpec | None:
    """The role's release policy: the `release:` section of whichever version's file has one."""
    for role in registry.versions(name):
        if role.release is not None:
            return role.release
    return None


def pinned_version(reference: str | None, headers: Mapping[str, str]) -> str | None:
    """The version a request pins by itself, or None when the release policy decides."""
    if reference is not None:
        _, version = split_reference(reference)
        if version is not None:
            return version
    pinned = headers.get(VERSION_HEADER, "").strip()
    return pinned or None


def routed_reference(
    registry: RoleRegistry[Role],
    name: str,
    reference: str | None,
    session_id: str,
    headers: Mapping[str, str],
) -> str:
    """`name@version` of the version that answers; the caller resolves it (and reports unknown ones)."""
    pinned = pinned_version(reference, headers)
    if pinned is not None:
        return f"{name}{VERSION_SEPARATOR}{pinned}"
    release = release_of(registry, name)
    if release is None:
        return name
    return f"{name}{VERSION_SEPARATOR}{decide(release, name, session_id, headers).version}"
