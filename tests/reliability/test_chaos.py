"""Restarts and crashes under load (short CI sizes; `make chaos` runs 20 SIGTERM and 100 kill -9 rounds)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rolescope.reliability.chaos import kill_rounds, sigterm_rounds
from rolescope.reliability.disconnects import aborted_streams_run

SIGTERM_ROUNDS = 3
KILL_ROUNDS = 3
ABORTED_STREAMS = 200


def test_sigterm_under_load_loses_no_acknowledged_message_and_ends_every_stream(tmp_path: Path) -> None:
    figures = asyncio.run(sigterm_rounds(tmp_path, SIGTERM_ROUNDS, shutdown_timeout_s=3.0))
    assert figures.rounds == SIGTERM_ROUNDS
    assert figures.acknowledged > 0
    assert figures.lost == 0, figures.notes
    assert figures.streams_open > 0
    # Every stream the service had accepted ended with `done` or a terminal `error` event.
    assert figures.streams_without_terminal == 0, figures.notes
    # Slow streams outlive the grace period, so the drain really ended some of them.
    assert figures.streams_ended_by_drain > 0
    assert figures.unclean_exits == 0, figures.notes
    assert figures.integrity_failures == 0
    assert figures.client_5xx == 0, figures.notes


def test_kill_9_under_write_load_keeps_the_database_intact(tmp_path: Path) -> None:
    figures = asyncio.run(kill_rounds(tmp_path, KILL_ROUNDS))
    assert figures.rounds == KILL_ROUNDS
    assert figures.acknowledged > 0
    assert figures.lost == 0, figures.notes
    assert figures.integrity_failures == 0, figures.notes
    # Two processes write the same file throughout; neither client ever saw a store error.
    assert figures.locked_errors == 0, figures.notes
    assert figures.client_5xx == 0, figures.notes


def test_aborted_streams_leave_nothing_behind(tmp_path: Path) -> None:
    figures = asyncio.run(aborted_streams_run(tmp_path, ABORTED_STREAMS))
    assert figures["aborts_mid_reply"] >= ABORTED_STREAMS * 0.95
    assert figures["aborts_not_back_to_baseline"] == 0, figures
    assert figures["aborts_open_files_delta"] <= 0
    assert figures["aborts_threads_delta"] <= 0
