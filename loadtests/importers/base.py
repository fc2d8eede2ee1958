"""What every traffic importer returns: conversations of user turns, plus every problem found.

An importer reads one foreign format and knows nothing about pseudonyms,
redaction or the traffic record; `build` turns its conversations into
redacted records. Problems are whole sentences that name the file, the line
and the field, so the command can list them all at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ImportedTurn:
    """One user message and, where the source says, what happened to it."""

    message: str
    arrival: float | None = None  # unix seconds; None when the source has no times
    latency_s: float = 0.0  # 0 when unknown
    status: int = 200
    output_tokens: int = 0
    max_tokens: int | None = None
    stream: bool | None = None  # None: the importer's default


@dataclass(frozen=True, slots=True)
class ImportedConversation:
    source_id: str  # the source's own session id; only its pseudonym is written
    where: str  # "file, line N" for problems found later
    turns: tuple[ImportedTurn, ...]
    role: str | None = None  # None: the role given on the command line


@dataclass(slots=True)
class ImportResult:
    conversations: list[ImportedConversation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Importer(Protocol):
    """One foreign format. `timed` says whether the source carries arrival times."""

    name: str
    summary: str
    timed: bool

    def read(self, path: Path) -> ImportResult: ...


def estimate_tokens(text: str) -> int:
    """Tokens in a reply the source gave only as text: about four characters a token in English."""
    return math.ceil(len(text) / 4)


def text_of_parts(content: object) -> str | None:
    """Text of an OpenAI-style `content`: a string, or a list of parts whose text parts are joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            str(part.get("text", part.get("content", "")))
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text", None)
        ]
        return "\n".join(t for t in texts if t) or None
    return None


def read_text(path: Path, result: ImportResult) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        result.problems.append(f"cannot read {path}: {exc.strerror}")
    except UnicodeDecodeError as exc:
        result.problems.append(f"{path}: not UTF-8 text (byte {exc.start})")
    return None
