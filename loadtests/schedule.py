"""Pure replay scheduling: which session a user replays, when each turn is sent.

Closed-model replay keeps each session's turn order and its recorded gaps
divided by the speed factor. The open model instead hands out intended send
times from a Poisson (or evenly spaced) arrival process; latency is then counted
from the intended time, so a slow service cannot quietly lower the offered load
(coordinated omission).
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from rolescope.loadtests.traffic_format import TrafficRecord, group_sessions

Arrival = Literal["poisson", "constant"]


@dataclass(frozen=True, slots=True)
class PlannedTurn:
    session: str
    turn: int
    offset_s: float  # from the session's first turn, already divided by the speed factor
    role: str
    message: str
    stream: bool


@dataclass(frozen=True, slots=True)
class SessionPlan:
    session: str
    start_offset_s: float  # from the first session of the trace, divided by speed
    turns: tuple[PlannedTurn, ...]


def _selected(session: str, share: float, seed: int) -> bool:
    # A hash rather than a random draw: the same sessions are chosen whatever the
    # file order, and a larger share always contains a smaller one.
    digest = hashlib.sha256(f"{seed}:{session}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def plan_sessions(
    records: Iterable[TrafficRecord], speed: float = 1.0, share: float = 1.0, seed: int = 0
) -> list[SessionPlan]:
    """Session plans in order of their first arrival, turns in recorded order."""
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    if not 0 < share <= 1:
        raise ValueError(f"share of sessions must be in (0, 1], got {share}")
    sessions = group_sessions(records)
    if not sessions:
        return []
    trace_start = min(turns[0].arrival for turns in sessions.values())
    plans: list[SessionPlan] = []
    for session, turns in sessions.items():
        if share < 1 and not _selected(session, share, seed):
            continue
        first = turns[0].arrival
        planned = tuple(
            PlannedTurn(
                session=session,
                turn=t.turn,
                offset_s=max(0.0, t.arrival - first) / speed,
                role=t.role,
                message=t.message,
                stream=t.stream,
            )
            for t in turns
        )
        plans.append(SessionPlan(session, (first - trace_start) / speed, planned))
    plans.sort(key=lambda p: (p.start_offset_s, p.session))
    if not plans and sessions:
        # A tiny share of a small file can select nothing; replay the first session instead of nothing.
        first_session = min(sessions, key=lambda s: sessions[s][0].arrival)
        return plan_sessions(sessions[first_session], speed=speed)
    return plans


def partition(plans: Sequence[SessionPlan], index: int, count: int) -> list[SessionPlan]:
    """The share of sessions one of `count` load processes replays (every session exactly once)."""
    if count <= 1:
        return list(plans)
    mine = list(plans[index % count :: count])
    return mine or list(plans[:1])


def turn_send_time(
    session_start: float, turn: PlannedTurn, previous_end: float | None
) -> tuple[float, float]:
    """(intended, earliest) send time of a turn: its scheduled time, but never before the previous
    answer finished, because a user does not send the next message before reading the reply."""
    intended = session_start + turn.offset_s
    earliest = intended if previous_end is None else max(intended, previous_end)
    return intended, earliest


def open_model_turns(plans: Sequence[SessionPlan]) -> Iterator[PlannedTurn]:
    """Every turn of the trace in recorded order, cycling forever (the open model's messages)."""
    ordered = sorted(
        ((plan.start_offset_s + turn.offset_s, turn) for plan in plans for turn in plan.turns),
        key=lambda item: (item[0], item[1].session, item[1].turn),
    )
    if not ordered:
        return iter(())
    return itertools.cycle([turn for _, turn in ordered])


class ArrivalClock:
    """Intended send times of an open-model arrival process at `rate` requests per second.

    Users share one clock per load process and each takes the next slot, so the
    offered rate does not depend on how fast answers come back.
    """

    def __init__(self, rate: float, start: float, arrival: Arrival = "poisson", seed: int = 0) -> None:
        if rate <= 0:
            raise ValueError(f"arrival rate must be > 0, got {rate}")
        self.rate = rate
        self.arrival = arrival
        self._next = start
        self._rng = random.Random(seed)
        self.issued = 0

    def next_slot(self) -> float:
        gap = self._rng.expovariate(self.rate) if self.arrival == "poisson" else 1.0 / self.rate
        self._next += gap
        self.issued += 1
        return self._next
