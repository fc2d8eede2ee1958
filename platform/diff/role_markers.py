"""The markers of every loaded role version, from role files: what `compare_pairs` checks replies against."""

from __future__ import annotations

from pathlib import Path

from rolescope.diff.compare import MarkersOf
from rolescope.diff.traits import RoleMarkers


def markers_from(roles_path: Path | None) -> MarkersOf:
    """(role, version) → its markers; `name@version` first, then the name's default version.

    Reads the role files at `roles_path` (the bundled examples when None); raises ConfigError on
    a bad one, as start-up does.
    """
    from rolescope.roles import Persona, load_roles
    from rolescope.settings import bundled_roles_path

    registry = load_roles(roles_path or bundled_roles_path())
    markers: dict[str, RoleMarkers] = {}
    for role in registry.all_versions():
        persona = role.persona if isinstance(role.persona, Persona) else None
        rules = role.response_constraints
        markers[role.reference] = RoleMarkers(
            banned_words=rules.banned_words,
            min_sentences=rules.min_sentences,
            max_sentences=rules.max_sentences,
            max_length=rules.max_length,
            openers=persona.openers if persona else (),
            closers=persona.closers if persona else (),
            catchphrases=persona.catchphrases if persona else (),
        )
        if registry.is_default(role):
            markers[role.name] = markers[role.reference]
    empty = RoleMarkers()

    def markers_of(role: str, version: str | None) -> RoleMarkers:
        return markers.get(f"{role}@{version}") or markers.get(role) or empty

    return markers_of
