"""The memory baseline file: figures per kind of request, their spread, and what they ran on.

Kinds are `chat` (one JSON answer) and `stream` (SSE), plus `all` for the whole
traffic mix. Allocation counts are deterministic for a given interpreter,
package set and traffic, so a baseline is compared only with a candidate
recorded on the same ones (see `environment.check_comparable`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rolescope.errors import ConfigError
from rolescope.validation_messages import describe_validation_error

SCHEMA = "rolescope.memory-baseline/v1"
Kind = Literal["chat", "stream", "all"]
KINDS: tuple[Kind, ...] = ("chat", "stream", "all")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AllocationSite(_Model):
    """Where allocations happen: the innermost Python frame, with figures per request."""

    function: str
    file: str
    line: int
    allocations_per_request: float
    bytes_per_request: float

    @property
    def key(self) -> str:
        return f"{self.function} ({self.file}:{self.line})"


class RepeatFigures(_Model):
    """One measured pass over the traffic of one kind."""

    requests: int
    sessions: int
    allocations: int
    bytes: int
    peak_bytes: int
    retained_bytes: int

    @property
    def allocations_per_request(self) -> float:
        return self.allocations / self.requests if self.requests else 0.0

    @property
    def bytes_per_request(self) -> float:
        return self.bytes / self.requests if self.requests else 0.0


class KindFigures(_Model):
    """Medians over the repeats, with their spread ((max - min) / median, in percent)."""

    requests: int
    sessions: int
    allocations_per_request: float
    bytes_per_request: float
    peak_bytes: int
    retained_bytes_per_session: float
    allocations_spread_pct: float
    bytes_spread_pct: float
    repeats: list[RepeatFigures]
    top_sites: list[AllocationSite] = Field(default_factory=list)


class Environment(_Model):
    python: str
    implementation: str
    platform: str
    packages: dict[str, str | None]
    rolescope: str | None = None
    role_versions: dict[str, str] = Field(default_factory=dict)
    traffic: str = ""
    traffic_digest: str = ""
    traffic_records: int = 0
    traffic_subset: str = "all"


class Baseline(_Model):
    schema_: str = Field(default=SCHEMA, alias="schema")
    mode: Literal["in-process", "live"] = "in-process"
    recorded_at: str
    repeats: int
    warmup: int
    settings: dict[str, object] = Field(default_factory=dict)
    environment: Environment
    kinds: dict[str, KindFigures]

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def dump(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2, by_alias=True) + "\n", encoding="utf-8")


def load_baseline(path: Path) -> Baseline:
    """Read a baseline file; a ConfigError names the file and the field that is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: no such baseline file (record one with `rolescope baseline record`)"
        ) from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable JSON baseline ({exc})") from exc
    if isinstance(data, dict) and data.get("schema") != SCHEMA:
        raise ConfigError(f"{path}: field `schema` is {data.get('schema')!r}, expected {SCHEMA!r}")
    try:
        return Baseline.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(str(path), exc)) from exc
