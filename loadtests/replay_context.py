"""Per-process replay state the Locust users share: session plans, the arrival clock, the run tag.

One object per load process, built from `LoadConfig`; no Locust import, so the
hand-out logic is testable on its own.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from rolescope.loadtests.load_config import LoadConfig
from rolescope.loadtests.role_selection import select_roles
from rolescope.loadtests.schedule import (
    ArrivalClock,
    PlannedTurn,
    SessionPlan,
    open_model_turns,
    partition,
    plan_sessions,
)
from rolescope.loadtests.targets.base import TargetAdapter
from rolescope.loadtests.targets.history import ConversationBook, load_personas
from rolescope.loadtests.targets.registry import make_adapter
from rolescope.loadtests.traffic_format import read_traffic


@dataclass
class ReplayContext:
    config: LoadConfig
    plans: list[SessionPlan]
    _sessions: Iterator[tuple[int, SessionPlan]] | None = field(default=None, init=False)
    _turns: Iterator[PlannedTurn] | None = field(default=None, init=False)
    _clock: ArrivalClock | None = field(default=None, init=False)
    _open_cycle: int = field(default=0, init=False)
    _last_turns: dict[str, int] | None = field(default=None, init=False)
    # Stateless targets: the conversations in flight in this process (see targets/history.py).
    conversations: ConversationBook = field(init=False)
    adapter: TargetAdapter = field(init=False)
    personas: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        target = self.config.target
        self.conversations = ConversationBook(target.history_turns)
        self.adapter = make_adapter(target)
        self.personas = load_personas(target.roles_path)

    @classmethod
    def from_config(cls, config: LoadConfig) -> ReplayContext:
        records = select_roles(read_traffic(config.traffic), config.target.role_map)
        plans = plan_sessions(records, config.speed, config.sessions_share, config.seed)
        return cls(config, plans)

    def bind_process(self, index: int) -> None:
        """Keep this process's share of sessions (every session replayed by exactly one process)."""
        if self._sessions is None and self._turns is None:
            self.plans = partition(self.plans, index, self.config.processes)

    def next_session(self) -> tuple[int, SessionPlan]:
        """The next session to replay and how many times the trace has been gone through."""
        if self._sessions is None:
            self._sessions = ((cycle, plan) for cycle in itertools.count() for plan in self.plans)
        return next(self._sessions)

    def next_open_request(self, index: int) -> tuple[float, PlannedTurn]:
        """(intended send time, message) of the next open-model arrival in this process."""
        if self._clock is None:
            assert self.config.rate is not None
            share = self.config.rate / self.config.processes
            self._clock = ArrivalClock(share, time.time(), self.config.arrival, seed=self.config.seed + index)
            self._turns = open_model_turns(self.plans)
        assert self._turns is not None
        return self._clock.next_slot(), next(self._turns)

    def is_last_turn(self, turn: PlannedTurn) -> bool:
        """Whether no later turn of its session is planned (its WebSocket may then be closed)."""
        if self._last_turns is None:
            self._last_turns = {plan.session: plan.turns[-1].turn for plan in self.plans if plan.turns}
        return self._last_turns.get(turn.session, turn.turn) <= turn.turn

    def session_id(self, session: str, cycle: int) -> str:
        # A replayed session must not append to the memory of the original one, nor of earlier replays.
        return f"{session}-{self.config.run_tag}-{cycle}"
