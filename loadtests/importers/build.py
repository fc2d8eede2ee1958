"""Imported conversations → redacted traffic records, with synthetic arrivals where the source has none.

Sessions are pseudonymised and messages redacted exactly as capture does
(`Redactor`), so imported and captured traffic look alike. A source without
times gets sessions arriving as a Poisson process at the stated rate, each
next turn after the previous answer plus a fixed think time, deterministic
for a seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from rolescope.loadtests.importers.base import ImportedConversation
from rolescope.loadtests.redaction import Redactor
from rolescope.loadtests.synth import DEFAULT_START
from rolescope.loadtests.traffic_format import OriginalAnswer, TrafficRecord


@dataclass(frozen=True, slots=True)
class ImportOptions:
    role: str = "sherlock"
    sessions_per_second: float = 0.5
    think_time_s: float = 5.0
    stream: bool = True
    seed: int = 7
    start: float = DEFAULT_START


def _validation_problem(where: str, turn: int, exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "(record)"
    return f"{where}: turn {turn}, field '{field}' is invalid ({first['msg']})"


def build_records(
    conversations: list[ImportedConversation],
    options: ImportOptions,
    redactor: Redactor,
    on_conversation: Callable[[], None] | None = None,
) -> tuple[list[TrafficRecord], list[str]]:
    """Records sorted by arrival, and every problem met on the way (`on_conversation` ticks progress)."""
    rng = random.Random(options.seed)
    records: list[TrafficRecord] = []
    problems: list[str] = []
    session_start = options.start
    for conversation in conversations:
        session = redactor.pseudonym(conversation.source_id, "s")
        session_start += rng.expovariate(options.sessions_per_second)
        arrival = session_start
        for index, turn in enumerate(conversation.turns):
            if turn.arrival is not None:
                arrival = turn.arrival
            try:
                record = TrafficRecord(
                    arrival=round(arrival, 6),
                    session=session,
                    turn=index,
                    role=conversation.role or options.role,
                    message=redactor.redact_message(session, turn.message),
                    stream=options.stream if turn.stream is None else turn.stream,
                    max_tokens=turn.max_tokens,
                    original=OriginalAnswer(
                        status=turn.status,
                        latency_s=round(turn.latency_s, 6),
                        output_tokens=turn.output_tokens,
                    ),
                )
            except ValidationError as exc:
                problems.append(_validation_problem(conversation.where, index, exc))
                continue
            records.append(record)
            arrival += turn.latency_s + options.think_time_s
        if on_conversation is not None:
            on_conversation()
    records.sort(key=lambda r: (r.arrival, r.session, r.turn))
    return records, problems
