"""Pure replay scheduling: session plans, speed, share, partitioning, arrivals and load shapes."""

from __future__ import annotations

import itertools

import pytest

from rolescope.loadtests.schedule import (
    ArrivalClock,
    PlannedTurn,
    open_model_turns,
    partition,
    plan_sessions,
    turn_send_time,
)
from rolescope.loadtests.stages import build_stages, stage_at
from rolescope.loadtests.synth import SynthOptions, synthesize
from rolescope.loadtests.traffic_format import OriginalAnswer, TrafficRecord


def _record(session: str, turn: int, arrival: float) -> TrafficRecord:
    return TrafficRecord(
        arrival=arrival,
        session=session,
        turn=turn,
        role="sherlock",
        message=f"{session}-{turn}",
        original=OriginalAnswer(status=200, latency_s=0.1, output_tokens=5),
    )


def test_plans_keep_turn_order_and_scale_gaps_by_speed() -> None:
    records = [_record("b", 1, 16.0), _record("a", 0, 10.0), _record("b", 0, 12.0), _record("a", 1, 14.0)]
    plans = plan_sessions(records, speed=2.0)
    assert [p.session for p in plans] == ["a", "b"]
    assert [p.start_offset_s for p in plans] == [0.0, 1.0]
    assert [(t.turn, t.offset_s) for t in plans[1].turns] == [(0, 0.0), (1, 2.0)]


def test_share_selects_whole_sessions_and_larger_shares_contain_smaller() -> None:
    records = synthesize(SynthOptions(sessions=200, seed=5))
    half = {p.session for p in plan_sessions(records, share=0.5)}
    tenth = {p.session for p in plan_sessions(records, share=0.1)}
    assert 60 < len(half) < 140
    assert tenth < half
    for plan in plan_sessions(records, share=0.1):
        assert len(plan.turns) == sum(1 for r in records if r.session == plan.session)


def test_invalid_speed_or_share_is_refused() -> None:
    with pytest.raises(ValueError, match="speed"):
        plan_sessions([_record("a", 0, 1.0)], speed=0)
    with pytest.raises(ValueError, match="share"):
        plan_sessions([_record("a", 0, 1.0)], share=1.5)


def test_partition_gives_every_session_to_exactly_one_process() -> None:
    plans = plan_sessions(synthesize(SynthOptions(sessions=31, seed=2)))
    parts = [partition(plans, i, 3) for i in range(3)]
    seen = [p.session for part in parts for p in part]
    assert sorted(seen) == sorted(p.session for p in plans)


def test_a_turn_waits_for_its_time_and_for_the_previous_answer() -> None:
    turn = PlannedTurn("a", 1, 2.0, "sherlock", "m", False)
    assert turn_send_time(100.0, turn, None) == (102.0, 102.0)
    assert turn_send_time(100.0, turn, 101.0) == (102.0, 102.0)
    assert turn_send_time(100.0, turn, 105.0) == (102.0, 105.0)


def test_open_model_turns_follow_the_trace_and_cycle() -> None:
    records = [_record("a", 0, 0.0), _record("b", 0, 1.0), _record("a", 1, 2.0)]
    turns = open_model_turns(plan_sessions(records))
    assert [next(turns).message for _ in range(4)] == ["a-0", "b-0", "a-1", "a-0"]


def test_poisson_clock_hits_its_rate_and_constant_clock_is_even() -> None:
    clock = ArrivalClock(rate=50.0, start=0.0, arrival="poisson", seed=1)
    slots = [clock.next_slot() for _ in range(5000)]
    assert all(b > a for a, b in itertools.pairwise(slots))
    assert 5000 / slots[-1] == pytest.approx(50.0, rel=0.05)
    even = ArrivalClock(rate=4.0, start=10.0, arrival="constant")
    assert [even.next_slot() for _ in range(3)] == [10.25, 10.5, 10.75]


@pytest.mark.parametrize("shape", ["step", "spike", "soak", "ramp"])
def test_shapes_peak_at_the_user_count_and_end_with_the_run(shape: str) -> None:
    stages = build_stages(shape, users=8, spawn_rate=2.0, duration_s=40.0)  # type: ignore[arg-type]
    assert max(s.users for s in stages) == 8
    assert stages[-1].until_s == pytest.approx(40.0)
    assert stage_at(stages, 0.0) is not None
    assert stage_at(stages, 40.0) is None


def test_step_climbs_and_spike_returns_to_base() -> None:
    step = build_stages("step", users=8, spawn_rate=2.0, duration_s=40.0)
    assert [s.users for s in step] == [2, 4, 6, 8]
    spike = build_stages("spike", users=8, spawn_rate=2.0, duration_s=10.0)
    assert [stage_at(spike, t).users for t in (1.0, 5.0, 9.0)] == [2, 8, 2]  # type: ignore[union-attr]
