"""One measured request, as the load users record it and `samples.jsonl` stores it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Kind = Literal["chat", "stream"]


@dataclass(slots=True)
class RequestSample:
    """Client-side timings of one request, in seconds.

    `intended_start` is when the schedule meant to send it and `start` when it
    was sent; in the open model every latency counts from `intended_start`.
    """

    name: str
    kind: Kind
    intended_start: float
    start: float
    ok: bool
    status: int
    e2e_s: float
    ttft_s: float | None = None
    tpot_s: float | None = None
    itl_s: list[float] = field(default_factory=list)
    output_tokens: int = 0
    error: str | None = None
    session: str = ""
    turn: int = 0
    all_at_once: bool = False  # the whole stream arrived in one read: not really streamed
    process: int = 0  # index of the load process (worker) that sent it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestSample:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


def write_samples(samples: Iterable[RequestSample], path: Path) -> int:
    count = 0
    with path.open("a", encoding="utf-8") as out:
        for sample in samples:
            out.write(json.dumps(sample.to_dict(), separators=(",", ":")) + "\n")
            count += 1
    return count


def read_samples(path: Path) -> Iterator[RequestSample]:
    with path.open("r", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield RequestSample.from_dict(json.loads(line))
