"""Validation messages: every problem at once, each with its field path, what was expected and the value."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rolescope.validation_messages import describe_validation_error, expectation, field_path, shown


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")

    words: tuple[str, ...]
    limit: int = Field(ge=1)


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    inner: _Inner


def _error(document: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _Outer.model_validate(document)
    return caught.value


def test_every_problem_is_listed_with_its_path_and_no_count_of_hidden_ones() -> None:
    error = _error({"name": "Bad Name", "inner": {"words": "one", "limit": 0}, "colour": "blue"})
    message = describe_validation_error("roles/bad.yaml", error)
    lines = message.splitlines()
    assert lines[0] == "roles/bad.yaml: 4 problems:"
    assert lines[1:] == [
        "  - field `name`: expected to match pattern '^[a-z][a-z0-9-]{0,62}$'; got 'Bad Name'",
        "  - field `inner.words`: expected a list; got 'one'",
        "  - field `inner.limit`: expected greater than or equal to 1; got 0",
        "  - field `colour` is not a known field; got 'blue'",
    ]
    assert "more)" not in message


def test_a_single_problem_stays_on_one_line() -> None:
    error = _error({"name": "ok", "inner": {"words": ["a"]}})
    assert describe_validation_error("f.yaml", error) == "f.yaml: field `inner.limit` is required"


def test_paths_index_lists_and_tidy_locations_are_applied() -> None:
    error = _error({"name": "ok", "inner": {"words": ["a", 7], "limit": 1}})
    assert "field `inner.words[1]`" in describe_validation_error("f", error)
    tidied = describe_validation_error("f", error, location=lambda loc: loc[1:])
    assert "field `words[1]`" in tidied


def test_pydantic_wording_becomes_what_was_expected() -> None:
    assert expectation("Input should be a valid integer") == "expected a valid integer"
    assert expectation("String should have at most 3 characters") == "expected at most 3 characters"
    assert expectation("Value error, expected single words") == "expected single words"
    assert field_path(()) == "(document)"
    assert shown({"a": 1}) == "a mapping"
    assert shown("x" * 200).endswith("...") and len(shown("x" * 200)) == 80
