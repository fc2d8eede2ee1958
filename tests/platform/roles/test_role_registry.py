"""The role registry: versions side by side, a default per name, and `name@version` lookups."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from rolescope.errors import ConfigError
from rolescope.role_registry import (
    RoleRegistry,
    UnknownRoleReference,
    as_registry,
    split_reference,
    version_key,
)
from rolescope.roles import Role, load_roles
from rolescope.settings import bundled_roles_path

SHERLOCK = load_roles(bundled_roles_path())["sherlock"]
GRIMBLE = load_roles(bundled_roles_path())["grimble"]


def _version(role: Role, version: str) -> Role:
    return role.model_copy(update={"version": version})


def test_versions_order_as_numbers_and_the_highest_is_the_default() -> None:
    registry = RoleRegistry([_version(SHERLOCK, v) for v in ("1.10", "1.2", "1.9")] + [GRIMBLE])
    assert [r.version for r in registry.versions("sherlock")] == ["1.2", "1.9", "1.10"]
    assert registry["sherlock"].version == "1.10"
    assert registry.resolve("sherlock").version == "1.10"
    assert list(registry) == ["sherlock", "grimble"]  # names in load order
    assert len(registry) == 2
    assert [r.reference for r in registry.all_versions()] == [
        "sherlock@1.2",
        "sherlock@1.9",
        "sherlock@1.10",
        "grimble@0.9.1",
    ]


def test_a_pinned_version_is_found_however_its_trailing_zeros_are_written() -> None:
    registry = RoleRegistry([_version(SHERLOCK, "1.2"), _version(SHERLOCK, "1.3.0")])
    assert registry.resolve("sherlock@1.2").version == "1.2"
    assert registry.resolve("sherlock@1.2.0").version == "1.2"
    assert registry.resolve("sherlock@1.3").version == "1.3.0"
    assert registry.is_default(registry.resolve("sherlock@1.3"))
    assert not registry.is_default(registry.resolve("sherlock@1.2"))


def test_a_configured_default_wins_over_the_highest_version() -> None:
    registry = RoleRegistry(
        [_version(SHERLOCK, "1.2"), _version(SHERLOCK, "1.3")], defaults={"sherlock": "1.2"}
    )
    assert registry.resolve("sherlock").version == "1.2"
    with pytest.raises(ValueError, match=r"set to '2\.0'; loaded versions: 1\.2, 1\.3"):
        RoleRegistry([_version(SHERLOCK, "1.2"), _version(SHERLOCK, "1.3")], defaults={"sherlock": "2.0"})
    with pytest.raises(ValueError, match="'moriarty', which is not loaded"):
        RoleRegistry([SHERLOCK], defaults={"moriarty": "1.0"})


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("moriarty", "unknown role 'moriarty'; this service serves: grimble, sherlock"),
        ("moriarty@1.2", "unknown role 'moriarty'; this service serves: grimble, sherlock"),
        ("sherlock@1.4", "role 'sherlock' has no version '1.4'; loaded versions: 1.2, 1.3"),
        ("sherlock@", "role 'sherlock' has no version ''; loaded versions: 1.2, 1.3"),
        ("sherlock@latest", "role 'sherlock' has no version 'latest'; loaded versions: 1.2, 1.3"),
        ("sherlock@1_2", "role 'sherlock' has no version '1_2'; loaded versions: 1.2, 1.3"),
    ],
)
def test_unknown_names_and_versions_say_what_is_loaded(reference: str, expected: str) -> None:
    registry = RoleRegistry([_version(SHERLOCK, "1.2"), _version(SHERLOCK, "1.3"), GRIMBLE])
    with pytest.raises(UnknownRoleReference) as caught:
        registry.resolve(reference)
    assert str(caught.value) == expected


def test_the_same_version_twice_is_refused() -> None:
    with pytest.raises(ValueError, match=r"loaded twice \(as 1\.2 and 1\.2\.0\)"):
        RoleRegistry([_version(SHERLOCK, "1.2"), _version(SHERLOCK, "1.2.0")])


def test_a_plain_mapping_becomes_a_registry_and_a_registry_stays_itself() -> None:
    registry = as_registry({"sherlock": SHERLOCK})
    assert isinstance(registry, RoleRegistry) and registry.resolve("sherlock@1.2") is SHERLOCK
    assert as_registry(registry) is registry


@given(
    st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=8)
)
def test_the_default_is_always_the_numerically_highest_version(parts: list[tuple[int, int, int]]) -> None:
    versions = {".".join(map(str, p)) for p in parts}
    registry = RoleRegistry([_version(SHERLOCK, v) for v in versions])
    highest = max(versions, key=lambda v: tuple(int(x) for x in v.split(".")))
    assert registry["sherlock"].version == highest
    for version in versions:
        assert registry.resolve(f"sherlock@{version}").version == version
    assert split_reference(f"sherlock@{highest}") == ("sherlock", highest)
    assert version_key(highest) == tuple(int(x) for x in highest.split("."))


def _write_version(folder: Path, file: str, version: str) -> Path:
    document = yaml.safe_load((bundled_roles_path() / "sherlock.yaml").read_text()) | {"version": version}
    path = folder / file
    path.write_text(yaml.safe_dump(document))
    return path


def test_two_files_of_one_role_load_side_by_side(tmp_path: Path) -> None:
    _write_version(tmp_path, "sherlock-1.2.yaml", "1.2")
    _write_version(tmp_path, "sherlock-1.3.yaml", "1.3")
    registry = load_roles(tmp_path)
    assert [r.version for r in registry.versions("sherlock")] == ["1.2", "1.3"]
    assert registry["sherlock"].version == "1.3"
    assert load_roles(tmp_path, defaults={"sherlock": "1.2"})["sherlock"].version == "1.2"
    with pytest.raises(ConfigError, match=f"{tmp_path}: the default version of role 'sherlock'"):
        load_roles(tmp_path, defaults={"sherlock": "9"})


def test_a_version_defined_in_two_files_names_both(tmp_path: Path) -> None:
    first = _write_version(tmp_path, "a.yaml", "1.2")
    second = _write_version(tmp_path, "b.yaml", "1.2.0")
    with pytest.raises(ConfigError) as caught:
        load_roles(tmp_path)
    assert str(caught.value) == f"{second}: role `sherlock` version 1.2.0 is already defined in {first}"
