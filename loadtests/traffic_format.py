"""The shadow-traffic record (one JSON object a line) and its reader and writer.

A record is one request as the service saw it: when it arrived, which session
(a keyed-HMAC pseudonym) and turn it belongs to, the role, the redacted
message, whether the reply was streamed, how many output tokens it asked for
(when it said), and what the original answer looked like, so a replay can be
compared with what production did.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import IO

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rolescope.errors import ConfigError
from rolescope.validation_messages import describe_validation_error

MAX_LINE_BYTES = 256 * 1024


class OriginalAnswer(BaseModel):
    """What the service answered when the request was captured."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: int = Field(ge=100, le=599, description="HTTP status")
    latency_s: float = Field(ge=0, description="end-to-end seconds, as the service measured them")
    output_tokens: int = Field(ge=0, description="tokens in the answer")
    role_version: str | None = Field(
        default=None, max_length=32, description="the version of the role that answered, if known"
    )


class TrafficRecord(BaseModel):
    """One captured request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arrival: float = Field(ge=0, description="arrival time, unix seconds")
    session: str = Field(min_length=1, max_length=128, description="session pseudonym")
    client: str | None = Field(default=None, max_length=128, description="client pseudonym, if known")
    turn: int = Field(ge=0, description="0-based index of the request within its session")
    role: str = Field(min_length=1, max_length=128)
    message: str = Field(max_length=64_000, description="the user's message, redacted")
    stream: bool = False
    max_tokens: int | None = Field(
        default=None, ge=1, le=1_000_000, description="output tokens the request asked for, if it said"
    )
    original: OriginalAnswer


def default_traffic_path() -> Path:
    """The synthetic sample bundled with the package."""
    return Path(str(resources.files("rolescope.loadtests.traffic").joinpath("sample.jsonl")))


def parse_line(line: str, path: Path | str, lineno: int) -> TrafficRecord:
    """Parse one line; a ConfigError names the file, the line and the field."""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}, line {lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}, line {lineno}: expected a JSON object, got {type(raw).__name__}")
    try:
        return TrafficRecord.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(f"{path}, line {lineno}", exc)) from exc


def iter_traffic(path: Path) -> Iterator[TrafficRecord]:
    """Stream the records of a JSONL file, skipping blank lines."""
    try:
        handle = path.open("r", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read traffic file {path}: {exc.strerror}") from exc
    with handle:
        for lineno, line in enumerate(handle, start=1):
            if len(line) > MAX_LINE_BYTES:
                raise ConfigError(f"{path}, line {lineno}: line longer than {MAX_LINE_BYTES} bytes")
            if line.strip():
                yield parse_line(line, path, lineno)


def read_traffic(path: Path | None = None) -> list[TrafficRecord]:
    """All records of a traffic file (the bundled sample when `path` is None)."""
    source = path if path is not None else default_traffic_path()
    records = list(iter_traffic(source))
    if not records:
        raise ConfigError(f"traffic file {source} holds no records")
    return records


def dump_record(record: TrafficRecord) -> str:
    """One JSONL line (no trailing newline), with a stable key order."""
    data = record.model_dump(mode="json")
    if data["max_tokens"] is None:
        del data["max_tokens"]  # files from before the field existed stay byte-for-byte the same
    if data["original"]["role_version"] is None:
        del data["original"]["role_version"]
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def write_traffic(records: Iterable[TrafficRecord], out: IO[str]) -> int:
    count = 0
    for record in records:
        out.write(dump_record(record) + "\n")
        count += 1
    return count


def write_traffic_file(records: Iterable[TrafficRecord], path: Path) -> int:
    """Write every record or nothing: a temporary file beside `path`, renamed into place at the end."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            count = write_traffic(records, out)
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ConfigError(f"cannot write traffic file {path}: {exc.strerror}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count


def group_sessions(records: Iterable[TrafficRecord]) -> dict[str, list[TrafficRecord]]:
    """Records by session, each session in turn order (first appearance order of sessions)."""
    sessions: dict[str, list[TrafficRecord]] = {}
    for record in records:
        sessions.setdefault(record.session, []).append(record)
    for turns in sessions.values():
        turns.sort(key=lambda r: (r.turn, r.arrival))
    return sessions
