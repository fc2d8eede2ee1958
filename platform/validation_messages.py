"""Every problem pydantic found in a file or a set of values, in one message a person can act on.

A file with three mistakes should cost one round trip, not three: each problem is
named by its field path (`persona.traits`, `banned_words[1]`), says what was
expected and shows the value that was given. pydantic's wording ("Input should
be …") is turned into "expected …" so every line reads the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from pydantic import ValidationError

Location = tuple[int | str, ...]

_SHOWN_CHARS = 80
_SHOULD = re.compile(r"^(?:Input|Value|String|Tuple|List|Dictionary|Set|Data) should (be|have|match) ")
_VERB_TO_EXPECTED = {"be": "expected ", "have": "expected ", "match": "expected to match "}


def field_path(loc: Location) -> str:
    """`("persona", "traits", 0)` → `persona.traits[0]`; the empty location is the whole document."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def shown(value: object) -> str:
    """The given value as the author would recognise it, cut to one short line."""
    if isinstance(value, dict):
        return "a mapping"
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def expectation(message: str) -> str:
    """pydantic's sentence as what was expected: "Input should be an integer" → "expected an integer"."""
    message = re.sub(r"^(?:Value|Assertion) error, ", "", message)
    match = _SHOULD.match(message)
    if match is None:
        return message
    # Role and spec files are YAML, where a tuple is written as a list.
    return _VERB_TO_EXPECTED[match.group(1)] + message[match.end() :].replace("a valid tuple", "a list")


def problem_lines(
    error: ValidationError, *, location: Callable[[Location], Location] = lambda loc: loc
) -> list[str]:
    """One line per problem, in the order pydantic found them; `location` may tidy each path."""
    lines: list[str] = []
    for detail in error.errors():
        field = field_path(location(tuple(detail["loc"])))
        kind = detail["type"]
        if kind == "missing":
            lines.append(f"field `{field}` is required")
        elif kind == "extra_forbidden":
            lines.append(f"field `{field}` is not a known field; got {shown(detail.get('input'))}")
        else:
            lines.append(f"field `{field}`: {expectation(detail['msg'])}; got {shown(detail.get('input'))}")
    return lines


def join_problems(source: str, lines: Sequence[str]) -> str:
    """`source: problem` for one problem; a counted list, one problem a line, for several."""
    if len(lines) == 1:
        return f"{source}: {lines[0]}"
    listed = "\n".join(f"  - {line}" for line in lines)
    return f"{source}: {len(lines)} problems:\n{listed}"


def describe_validation_error(
    source: str, error: ValidationError, *, location: Callable[[Location], Location] = lambda loc: loc
) -> str:
    """The whole of `error` as one message that starts with `source` (a file, a line, a setting)."""
    return join_problems(source, problem_lines(error, location=location))
