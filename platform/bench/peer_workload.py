"""The workload every tool of the peer benchmark is given, and the traffic file stating it to rolescope."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rolescope.loadtests.traffic_format import OriginalAnswer, TrafficRecord, dump_record

# Plain words: one word is one token to rolescope's counter and about one to a WordPiece tokenizer.
_SENTENCE = (
    "observe the small details of the case before you reason about the facts and then tell me what "
    "the mud on the boots and the ash on the sleeve say about the visitor who came at night"
)
_WORDS: tuple[str, ...] = tuple(_SENTENCE.split())


@dataclass(frozen=True, slots=True)
class Workload:
    """Open model: Poisson arrivals at `rate` per second for `seconds`, fixed prompt and output lengths."""

    rate: float
    seconds: float
    prompt_tokens: int
    output_tokens: int
    model: str
    seed: int = 0

    @property
    def expected_requests(self) -> int:
        return max(1, round(self.rate * self.seconds))


def prompt_of(tokens: int) -> str:
    """A prompt of `tokens` words, the same for every request."""
    return " ".join(_WORDS[i % len(_WORDS)] for i in range(tokens))


def traffic_records(workload: Workload, role: str, count: int) -> list[TrafficRecord]:
    """Single-turn sessions with the workload's prompt; the open model sets when they are sent."""
    now = time.time()
    message = prompt_of(workload.prompt_tokens)
    return [
        TrafficRecord(
            arrival=now + index / workload.rate,
            session=f"s_peer{index:06d}",
            turn=0,
            role=role,
            message=message,
            stream=True,
            max_tokens=workload.output_tokens,
            original=OriginalAnswer(status=200, latency_s=1.0, output_tokens=workload.output_tokens),
        )
        for index in range(count)
    ]


def write_traffic(workload: Workload, role: str, path: Path) -> Path:
    # Twice the expected count, so Poisson bursts never run out of sessions to send.
    records = traffic_records(workload, role, 2 * workload.expected_requests + 20)
    path.write_text("".join(dump_record(r) + "\n" for r in records), encoding="utf-8")
    return path
