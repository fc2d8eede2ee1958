"""The drain begins the moment the server is told to exit: chained to its handler, per app, per worker."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import httpx
import pytest
import yaml

from rolescope.service.shutdown import SHUTDOWN_CODE, DrainSignal
from rolescope.serving.exit_signals import drain_on_exit_signals
from rolescope.settings import bundled_roles_path

if TYPE_CHECKING:
    from rolescope.serving.launcher import ServiceProcess


@pytest.fixture
def sigterm_handler() -> Iterator[list[int]]:
    """A recording SIGTERM handler, as uvicorn installs one while it serves; restored afterwards."""
    received: list[int] = []

    def record(sig: int, frame: FrameType | None) -> None:
        received.append(sig)

    original = signal.signal(signal.SIGTERM, record)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, original)


def test_an_exit_signal_begins_the_drain_then_reaches_the_servers_handler(sigterm_handler: list[int]) -> None:
    drain = DrainSignal()
    installed = signal.getsignal(signal.SIGTERM)
    with drain_on_exit_signals(drain):
        signal.raise_signal(signal.SIGTERM)
        assert drain.draining
        assert sigterm_handler == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is installed  # put back as it was


def test_outside_the_lifespan_an_exit_signal_leaves_the_drain_alone(sigterm_handler: list[int]) -> None:
    drain = DrainSignal()
    with drain_on_exit_signals(drain):
        pass
    signal.raise_signal(signal.SIGTERM)
    assert sigterm_handler == [signal.SIGTERM] and not drain.draining


def test_with_no_handler_to_chain_to_nothing_is_installed() -> None:
    original = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with drain_on_exit_signals(DrainSignal()):
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, original)


def _slow_role(folder: Path) -> Path:
    document = yaml.safe_load((bundled_roles_path() / "grimble.yaml").read_text())
    timing = document.setdefault("inference", {}).setdefault("simulator", {})
    timing.update(ttft_ms=10, tokens_per_second=4, jitter=0)  # a reply takes tens of seconds
    folder.mkdir()
    (folder / "grimble.yaml").write_text(yaml.safe_dump(document))
    return folder


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_ends_a_stream_in_flight_with_one_shutting_down_event(
    workers: int, tmp_path: Path, service_factory: Callable[..., ServiceProcess]
) -> None:
    service = service_factory(
        roles_path=_slow_role(tmp_path / "roles"),
        env={"ROLESCOPE_SHUTDOWN_TIMEOUT_S": "2", "ROLESCOPE_WORKERS": str(workers)},
    )
    events: list[tuple[str, dict]] = []
    params = {"role": "grimble", "message": "Tell me the whole story of the cellar."}
    with httpx.stream("GET", f"{service.url}/v1/chat", params=params, timeout=30) as response:
        assert response.status_code == 200
        name = ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
                if len(events) == 1:
                    service.process.send_signal(signal.SIGTERM)
                    signalled = time.monotonic()
    ended_after = time.monotonic() - signalled
    assert events[0][0] == "token"
    assert [name for name, _ in events[1:-1]] == ["token"] * (len(events) - 2)
    assert events[-1][0] == "error" and events[-1][1]["error"]["code"] == SHUTDOWN_CODE
    # Ended by the drain (1 s grace), long before the reply would have finished on its own.
    assert ended_after < 5.0
    assert service.process.wait(timeout=15) in (0, -signal.SIGTERM)


def test_with_a_hold_the_servers_handler_runs_only_after_the_hold_returns(sigterm_handler: list[int]) -> None:
    async def scenario() -> None:
        drain = DrainSignal(grace_s=0, backstop_s=10)
        released = asyncio.Event()

        async def hold() -> None:
            await released.wait()  # open WebSockets still sending their terminal frames

        with drain_on_exit_signals(drain, hold):
            signal.raise_signal(signal.SIGTERM)
            await asyncio.sleep(0.05)
            assert drain.draining and sigterm_handler == []
            released.set()
            await asyncio.sleep(0.05)
            assert sigterm_handler == [signal.SIGTERM]

    asyncio.run(scenario())


def test_a_hold_that_never_returns_is_cut_at_the_backstop(sigterm_handler: list[int]) -> None:
    async def scenario() -> None:
        drain = DrainSignal(grace_s=0, backstop_s=0.1)
        with drain_on_exit_signals(drain, asyncio.Event().wait):
            signal.raise_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            assert sigterm_handler == [signal.SIGTERM]

    asyncio.run(scenario())


def test_sighup_calls_the_action_then_the_handler_installed_before_and_is_put_back() -> None:
    import os

    from rolescope.serving.exit_signals import call_on_hangup

    calls: list[str] = []

    def earlier(sig: int, frame: FrameType | None) -> None:
        calls.append("earlier")

    original = signal.signal(signal.SIGHUP, earlier)
    try:
        with call_on_hangup(lambda: calls.append("reload")):
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.05)
            assert calls == ["reload", "earlier"]
        assert signal.getsignal(signal.SIGHUP) is earlier
    finally:
        signal.signal(signal.SIGHUP, original)
