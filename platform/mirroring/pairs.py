"""The mirrored-pairs file (JSONL): one primary answer and its candidate's answer per line.

Written by the service (`serve --mirror-pairs FILE`), redacted before a byte is
written, and read by `rolescope diff`. Pure: records, one writer, one reader.

    {"arrival": 1767200000.1, "session": "s_…", "role": "sherlock", "message": "…",
     "target": "sherlock@1.3", "outcome": "ok",
     "primary":   {"version": "1.2", "status": 200, "latency_s": 0.41, "ttft_s": 0.12,
                   "output_tokens": 37, "confidence": 0.83, "content": "…"},
     "candidate": {"version": "1.3", "status": 200, …}}
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rolescope.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Answer:
    version: str | None  # the role version that answered; None for a URL that does not say
    status: int  # HTTP status the answer had (0: no answer at all)
    latency_s: float
    ttft_s: float | None
    output_tokens: int
    confidence: float | None
    content: str | None  # None when there was no answer


@dataclass(frozen=True, slots=True)
class MirrorPair:
    arrival: float
    session: str  # keyed-HMAC pseudonym
    role: str
    message: str  # redacted
    target: str  # `name@version` or a URL
    outcome: str  # of the mirrored request: ok, failed, timeout
    primary: Answer
    candidate: Answer


def dump_pair(pair: MirrorPair) -> str:
    return json.dumps(asdict(pair), ensure_ascii=False, separators=(",", ":"))


def _answer(raw: Any, where: str) -> Answer:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object")
    return Answer(
        version=None if raw.get("version") is None else str(raw["version"]),
        status=int(raw["status"]),
        latency_s=float(raw["latency_s"]),
        ttft_s=None if raw.get("ttft_s") is None else float(raw["ttft_s"]),
        output_tokens=int(raw.get("output_tokens", 0)),
        confidence=None if raw.get("confidence") is None else float(raw["confidence"]),
        content=None if raw.get("content") is None else str(raw["content"]),
    )


def parse_pair(line: str) -> MirrorPair:
    raw = json.loads(line)
    if not isinstance(raw, dict):
        raise ValueError("expected a JSON object")
    return MirrorPair(
        arrival=float(raw["arrival"]),
        session=str(raw["session"]),
        role=str(raw["role"]),
        message=str(raw["message"]),
        target=str(raw["target"]),
        outcome=str(raw["outcome"]),
        primary=_answer(raw["primary"], "primary"),
        candidate=_answer(raw["candidate"], "candidate"),
    )


def iter_pairs(path: Path) -> Iterator[MirrorPair]:
    with path.open(encoding="utf-8") as lines:
        yield from (parse_pair(line) for line in lines if line.strip())


def read_pairs(path: Path) -> list[MirrorPair]:
    """Every pair of the file; ConfigError naming each bad line (all of them) and what was expected."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such pairs file")
    pairs: list[MirrorPair] = []
    problems: list[str] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                pairs.append(parse_pair(line))
            except (ValueError, KeyError, TypeError) as exc:
                problems.append(f"{path}:{number}: expected a mirrored pair ({type(exc).__name__}: {exc})")
    if problems:
        raise ConfigError("\n".join(problems))
    return pairs
