"""The template YAML: how to speak to a JSON/SSE role service that is neither rolescope nor OpenAI.

    name: seed-chat
    request:
      method: POST
      path: /api/chat
      body: {message: "{message}", session_id: "{session_id}"}
    reply:
      stream:                       # how an SSE answer is read
        text: delta.content         # a field path into each event's JSON data
        output_tokens: usage.output_tokens
        end: {field: done}          # what ends the stream: an event name, a data literal or a field
        error: {event: error, field: error.message}
      json:                         # how a JSON answer is read
        text: reply
        error: error

Placeholders in the body's strings and in the path: `{message}`, `{session_id}`,
`{role}`, `{model}`, `{history}` (the conversation as OpenAI-style messages)
and `{stream}` (true or false). A string that is exactly one placeholder
becomes its value (a list for `{history}`, a boolean for `{stream}`).
Field paths are dotted (`choices.0.delta.content`); `$.choices[0].delta.content`
is read the same.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rolescope.errors import ConfigError

MAX_TEMPLATE_BYTES = 64 * 1024
PLACEHOLDERS = frozenset({"message", "session_id", "role", "model", "history", "stream"})
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
FieldPath = tuple[str | int, ...]


def parse_field_path(text: str) -> FieldPath:
    """`choices.0.delta.content` (or `$.choices[0].delta.content`) as keys and list indexes."""
    cleaned = text.strip().removeprefix("$").removeprefix(".")
    cleaned = re.sub(r"\[(\d+)\]", r".\1", cleaned)
    parts = cleaned.split(".")
    if not cleaned or any(not part for part in parts):
        raise ValueError(f"expected a dotted field path such as choices.0.delta.content, got {text!r}")
    return tuple(int(part) if part.isdigit() else part for part in parts)


def lookup(document: Any, path: FieldPath) -> Any:
    """The value at `path`, or None where the document has no such field."""
    value = document
    for part in path:
        if isinstance(part, int) and isinstance(value, list):
            if part >= len(value):
                return None
            value = value[part]
        elif isinstance(value, dict):
            value = value.get(str(part))
        else:
            return None
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Paths(_Strict):
    @field_validator("*", mode="before")
    @classmethod
    def _paths(cls, value: Any, info: Any) -> Any:
        if info.field_name in cls.path_fields() and isinstance(value, str):
            return parse_field_path(value)
        return value

    @classmethod
    def path_fields(cls) -> frozenset[str]:
        return frozenset()


class EndRule(_Paths):
    event: str | None = Field(default=None, description="an SSE event name that ends the stream")
    data: str | None = Field(default=None, description="a data payload that ends it, e.g. [DONE]")
    field: FieldPath | None = Field(
        default=None, description="a field whose presence (not null/false) ends it"
    )

    @classmethod
    def path_fields(cls) -> frozenset[str]:
        return frozenset({"field"})

    @model_validator(mode="after")
    def _something(self) -> EndRule:
        if self.event is None and self.data is None and self.field is None:
            raise ValueError("expected at least one of event, data, field")
        return self


class ErrorRule(_Paths):
    event: str | None = Field(default=None, description="an SSE event name that reports an error")
    field: FieldPath | None = Field(default=None, description="a field whose presence is an error")

    @classmethod
    def path_fields(cls) -> frozenset[str]:
        return frozenset({"field"})

    @model_validator(mode="after")
    def _something(self) -> ErrorRule:
        if self.event is None and self.field is None:
            raise ValueError("expected at least one of event, field")
        return self


class StreamReplySpec(_Paths):
    text: FieldPath
    events: tuple[str, ...] = Field(default=(), description="event names carrying text; empty: any")
    output_tokens: FieldPath | None = None
    end: EndRule
    error: ErrorRule | None = None

    @classmethod
    def path_fields(cls) -> frozenset[str]:
        return frozenset({"text", "output_tokens"})


class JsonReplySpec(_Paths):
    text: FieldPath
    output_tokens: FieldPath | None = None
    error: FieldPath | None = None

    @classmethod
    def path_fields(cls) -> frozenset[str]:
        return frozenset({"text", "output_tokens", "error"})


class ReplySpec(_Strict):
    stream: StreamReplySpec | None = None
    json_: JsonReplySpec | None = Field(default=None, alias="json")

    @model_validator(mode="after")
    def _one(self) -> ReplySpec:
        if self.stream is None and self.json_ is None:
            raise ValueError("expected stream, json or both")
        return self


class RequestSpec(_Strict):
    method: Literal["POST", "PUT", "PATCH", "GET"] = "POST"
    path: str = Field(pattern=r"^/", description="path under --host, may hold placeholders")
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None


class TemplateSpec(_Strict):
    name: str = Field(min_length=1, max_length=64)
    request: RequestSpec
    reply: ReplySpec

    def placeholders(self) -> set[str]:
        found = set(PLACEHOLDER.findall(self.request.path))
        for _, text in _strings(self.request.body, ()):
            found.update(PLACEHOLDER.findall(text))
        return found


def _strings(value: Any, where: tuple[str, ...]) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(".".join(where), value)]
    if isinstance(value, dict):
        return [item for key, inner in value.items() for item in _strings(inner, (*where, str(key)))]
    if isinstance(value, list):
        return [item for index, inner in enumerate(value) for item in _strings(inner, (*where, str(index)))]
    return []


def _unknown_placeholders(document: dict[str, Any]) -> list[str]:
    request = document.get("request")
    if not isinstance(request, dict):
        return []
    places = [("request.path", request["path"])] if isinstance(request.get("path"), str) else []
    places += [
        (f"request.body.{where}".rstrip("."), text) for where, text in _strings(request.get("body"), ())
    ]
    known = ", ".join("{" + name + "}" for name in sorted(PLACEHOLDERS))
    return [
        f"field `{where}`: unknown placeholder {{{name}}}; expected one of {known}"
        for where, text in places
        for name in PLACEHOLDER.findall(text)
        if name not in PLACEHOLDERS
    ]


def load_template(path: Path) -> TemplateSpec:
    """Parse and validate a template file; every problem is named with the file and the field."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the template ({exc.strerror})") from exc
    if len(raw) > MAX_TEMPLATE_BYTES:
        raise ConfigError(f"{path}: template is {len(raw)} bytes; expected at most {MAX_TEMPLATE_BYTES}")
    try:
        document = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a mapping with name, request, reply")
    problems = _unknown_placeholders(document)
    spec: TemplateSpec | None = None
    try:
        spec = TemplateSpec.model_validate(document)
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"] if part != "json_") or "(document)"
            message = error["msg"].removeprefix("Value error, ")
            shown = "" if error["type"] == "missing" else f"; got {error.get('input')!r}"[:90]
            problems.append(f"field `{field}`: {message}{shown}")
    if problems or spec is None:
        raise ConfigError(f"{path}: " + "\n  ".join(["template is invalid:", *problems]))
    return spec
