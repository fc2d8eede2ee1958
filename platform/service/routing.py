"""Which loaded version of a role answers a request: a pin, else the role's release policy.

In order: a version in the reference (`sherlock@1.3`), the `X-Role-Version`
header, the release policy's header and cookie rules (each decides for the one
request that carries it), the version stored with the session (the one that
answered its first turn), then the policy's sticky weight split over the
session id. A role without a `release:` section is answered by its default
version.

The split alone would keep a session on one version only while the weights
stay put: rendezvous hashing moves the fewest sessions a weight change can, but
it does move some, mid-conversation. So the version that answered the first
turn is stored with the session and answers every later turn; the policy picks
again only for a new session, a session stored before versions were recorded,
or one whose version has been removed (that move is recorded and counted).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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


def _rule_version(release: ReleaseSpec | None, headers: Mapping[str, str]) -> str | None:
    if release is None:
        return None
    return next((rule.version for rule in release.rules if rule.matches(headers)), None)


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


@dataclass(frozen=True, slots=True)
class SessionRoute:
    """The version that answers a turn and what the session should remember of it.

    `record`: store the answering version with the session (else keep what is stored);
    `moved_from` names a stored version that is no longer loaded, when that forced a new pick.
    """

    reference: str
    record: bool
    moved_from: str | None = None


def session_route(
    registry: RoleRegistry[Role],
    name: str,
    reference: str | None,
    session_id: str,
    headers: Mapping[str, str],
    *,
    new_session: bool,
    stored_version: str | None,
) -> SessionRoute:
    """`routed_reference`, with the session's stored version ahead of the weight split.

    A turn pinned by the request or a release rule is answered by that version and changes
    nothing stored, unless it opens the session: then that version answered the first turn
    and is the one remembered.
    """
    requested = pinned_version(reference, headers) or _rule_version(release_of(registry, name), headers)
    if requested is not None:
        return SessionRoute(f"{name}{VERSION_SEPARATOR}{requested}", record=new_session)
    loaded = {role.version for role in registry.versions(name)}
    if not new_session and stored_version is not None and stored_version in loaded:
        return SessionRoute(f"{name}{VERSION_SEPARATOR}{stored_version}", record=False)
    moved_from = stored_version if not new_session and stored_version is not None else None
    return SessionRoute(routed_reference(registry, name, None, session_id, headers), True, moved_from)
