"""Role files: the bundled examples load, and every kind of bad file is refused with a precise message."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rolescope.errors import ConfigError
from rolescope.roles import (
    MAX_PERSONA_TEXT_CHARS,
    MAX_ROLE_FILE_BYTES,
    NEUTRAL_GREETING,
    load_role_file,
    load_roles,
)
from rolescope.settings import bundled_roles_path

SHERLOCK = bundled_roles_path() / "sherlock.yaml"


def _sherlock() -> dict:
    return yaml.safe_load(SHERLOCK.read_text())


def _write(folder: Path, name: str, document: object) -> Path:
    path = folder / name
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return path


def test_bundled_examples_hold_sherlock_and_two_more_distinct_roles() -> None:
    roles = load_roles(bundled_roles_path())
    assert roles["sherlock"].version == "1.2"
    assert len(roles) >= 3
    assert len({r.display_name for r in roles.values()}) == len(roles)
    assert len({r.inference.simulator.seed for r in roles.values()}) == len(roles)


def test_a_single_file_loads_on_its_own() -> None:
    assert list(load_roles(SHERLOCK)) == ["sherlock"]


def test_yaml_float_versions_are_kept_as_written(tmp_path: Path) -> None:
    document = _sherlock() | {"version": 1.2}
    assert load_role_file(_write(tmp_path, "r.yaml", document)).version == "1.2"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.pop("persona"), "field `persona` is required"),
        (lambda d: d["inference"].update(timeout_ms=-5), "field `inference.timeout_ms`"),
        (lambda d: d.update(name="Sherlock Holmes!"), "field `name`"),
        (lambda d: d["persona"].update(traits="observant"), "field `persona.traits`"),
        (lambda d: d.update(colour="blue"), "field `colour`"),
        (lambda d: d["response_constraints"].update(banned_words=["two words"]), "banned_words"),
        (lambda d: d["inference"].update(backend="openai"), "expected base_url"),
        (lambda d: d["inference"].update(backend="llama"), "field `inference.backend`"),
        (lambda d: d["response_constraints"].update(min_sentences=9, max_sentences=2), "min_sentences"),
    ],
    ids=[
        "missing",
        "negative",
        "bad-name",
        "wrong-type",
        "unknown-field",
        "banned-phrase",
        "openai-no-url",
        "unknown-backend",
        "sentence-bounds",
    ],
)
def test_invalid_fields_are_named_with_the_file(tmp_path: Path, mutate, expected: str) -> None:
    document = _sherlock()
    mutate(document)
    path = _write(tmp_path, "bad.yaml", document)
    with pytest.raises(ConfigError) as caught:
        load_roles(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [unclosed", "not valid YAML at line"),
        ("- just\n- a list\n", "expected a mapping"),
        ("!!python/object/apply:os.system ['true']\n", "not valid YAML"),
        ("", "expected a mapping"),
    ],
    ids=["syntax", "list", "python-tag", "empty"],
)
def test_unparseable_documents_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigError, match=expected):
        load_roles(path)


def test_oversized_files_are_refused_before_parsing(tmp_path: Path) -> None:
    path = _write(tmp_path, "big.yaml", "# " + "x" * MAX_ROLE_FILE_BYTES + "\n")
    with pytest.raises(ConfigError, match=f"at most {MAX_ROLE_FILE_BYTES}"):
        load_roles(path)


def test_a_symlink_out_of_the_roles_folder_is_refused(tmp_path: Path) -> None:
    outside = _write(tmp_path, "outside.yaml", _sherlock())
    folder = tmp_path / "roles"
    folder.mkdir()
    os.symlink(outside, folder / "sneaky.yaml")
    with pytest.raises(ConfigError, match="must stay inside"):
        load_roles(folder)


def test_duplicate_names_and_empty_folders_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", _sherlock())
    _write(tmp_path, "b.yaml", _sherlock())
    with pytest.raises(ConfigError, match="already defined in"):
        load_roles(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="at least one role file"):
        load_roles(empty)
    with pytest.raises(ConfigError, match="no such role file"):
        load_roles(tmp_path / "missing.yaml")


def test_serve_refuses_to_start_on_a_bad_role_and_says_why(tmp_path: Path) -> None:
    document = _sherlock()
    document["memory_policy"]["max_turns"] = 0
    path = _write(tmp_path, "bad.yaml", document)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rolescope",
            "serve",
            "--config",
            str(path),
            "--port",
            "0",
            "--db",
            str(tmp_path / "x.db"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "memory_policy.max_turns" in result.stderr
    assert str(path) in result.stderr.replace("\n", "")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_a_file_with_several_problems_lists_all_of_them_at_once(tmp_path: Path) -> None:
    document = _sherlock() | {"name": "Sherlock Holmes!", "colour": "blue"}
    document["persona"]["traits"] = "observant"
    document["inference"]["timeout_ms"] = -5
    del document["persona"]["background"]
    path = _write(tmp_path, "bad.yaml", document)
    with pytest.raises(ConfigError) as caught:
        load_roles(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: 5 problems:")
    for expected in (
        "field `name`: expected to match pattern '^[a-z][a-z0-9_-]{0,62}$'; got 'Sherlock Holmes!'",
        "field `colour` is not a known field",
        "field `persona.traits`: expected a list; got 'observant'",
        "field `persona.background` is required",
        "field `inference.timeout_ms`: expected greater than or equal to 1; got -5",
    ):
        assert expected in message
    assert "more)" not in message


def test_a_persona_may_be_plain_text_and_is_used_verbatim_as_the_system_prompt(tmp_path: Path) -> None:
    prompt = "You are a lighthouse keeper.\nYou speak of storms, ships and the sea."
    role = load_role_file(_write(tmp_path, "keeper.yaml", _sherlock() | {"persona": prompt + "\n\n"}))
    assert role.persona == prompt
    assert role.system_prompt() == prompt
    assert role.display_name == "Sherlock"
    assert role.greeting == NEUTRAL_GREETING
    bundled = load_roles(bundled_roles_path())
    assert isinstance(bundled["storyteller"].persona, str)
    assert bundled["sherlock"].greeting == bundled["sherlock"].persona.greeting  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("   ", "field `persona`: expected at least 1 character"),
        ("x" * (MAX_PERSONA_TEXT_CHARS + 1), f"field `persona`: expected at most {MAX_PERSONA_TEXT_CHARS}"),
        (42, "field `persona`: expected a system prompt (text) or a mapping with display_name"),
        (["a", "b"], "field `persona`: expected a system prompt (text) or a mapping"),
    ],
    ids=["blank", "too-long", "number", "list"],
)
def test_bad_plain_text_personas_are_refused_with_the_field(
    tmp_path: Path, persona: object, expected: str
) -> None:
    path = _write(tmp_path, "bad.yaml", _sherlock() | {"persona": persona})
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_roles(path)
