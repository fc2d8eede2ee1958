"""Draining: streams finish within the grace period or end with exactly one terminal event."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from rolescope.service.shutdown import DrainSignal, drain_aware, stream_grace_s


async def tokens(count: int, gap_s: float, closed: list[bool]) -> AsyncIterator[str]:
    try:
        for index in range(count):
            await asyncio.sleep(gap_s)
            yield f"t{index}"
        yield "final"
    finally:
        closed.append(True)


async def collect(stream: AsyncIterator[str]) -> list[str]:
    return [item async for item in stream]


def test_without_a_drain_every_event_passes_through() -> None:
    closed: list[bool] = []
    out = asyncio.run(collect(drain_aware(tokens(5, 0, closed), DrainSignal(), lambda: "bye")))
    assert out == ["t0", "t1", "t2", "t3", "t4", "final"]
    assert closed == [True]


def test_a_stream_that_outlives_the_grace_period_ends_with_one_terminal_event() -> None:
    async def scenario() -> list[str]:
        signal = DrainSignal()
        closed: list[bool] = []
        # A stream stuck waiting for its next token (no token for 60 s): only the drain can end it.
        task = asyncio.create_task(collect(drain_aware(tokens(3, 60, closed), signal, lambda: "bye")))
        await asyncio.sleep(0.05)
        # Signals arrive from another thread / a signal handler, not from the loop.
        threading.Thread(target=signal.begin, args=(0.05,)).start()
        out = await asyncio.wait_for(task, timeout=10)
        assert closed == [True]
        return out

    assert asyncio.run(scenario()) == ["bye"]


def test_a_stream_still_producing_tokens_is_ended_after_the_grace_period() -> None:
    async def scenario() -> tuple[list[str], float]:
        signal = DrainSignal()
        # 1,000 tokens 20 ms apart: 20 s if nothing stops it.
        task = asyncio.create_task(collect(drain_aware(tokens(1000, 0.02, []), signal, lambda: "bye")))
        await asyncio.sleep(0.1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        signal.begin(grace_s=0.2)
        out = await asyncio.wait_for(task, timeout=10)
        return out, loop.time() - started

    out, _ = asyncio.run(scenario())
    assert out[-1] == "bye"
    assert out.count("bye") == 1
    assert "final" not in out
    assert len(out) < 100


def test_a_stream_that_finishes_within_the_grace_period_is_not_cut() -> None:
    async def scenario() -> list[str]:
        signal = DrainSignal()
        signal.begin(grace_s=30)
        return await collect(drain_aware(tokens(5, 0.001, []), signal, lambda: "bye"))

    assert asyncio.run(scenario()) == ["t0", "t1", "t2", "t3", "t4", "final"]


def test_the_streams_own_timeouts_are_not_mistaken_for_the_drain() -> None:
    async def failing() -> AsyncIterator[str]:
        yield "t0"
        raise TimeoutError("inference timed out")

    async def scenario() -> None:
        await collect(drain_aware(failing(), DrainSignal(), lambda: "bye"))

    with pytest.raises(TimeoutError, match="inference"):
        asyncio.run(scenario())


def test_stream_grace_leaves_headroom_within_the_shutdown_timeout() -> None:
    assert 0 < stream_grace_s(10) < 10
    assert stream_grace_s(0) == 0
