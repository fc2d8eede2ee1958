"""Crash and restart chaos against a real service: SIGTERM under load, kill -9 under write load.

    python -m rolescope.reliability.chaos                  # full size: 20 SIGTERM, 100 kill -9 rounds
    python -m rolescope.reliability.chaos --sigterm 3 --kill 5 --aborts 200 --overload-seconds 0

Every message a client saw acknowledged (HTTP 200, or an SSE `done` event) must be in the
SQLite file afterwards; the file must pass `PRAGMA integrity_check` after every crash; no
client may see a store error ("database is locked") while two processes write the same file;
every SSE stream open at SIGTERM must end with a terminal event; the process must exit
within its shutdown timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from rolescope.reliability.checks import integrity_check, missing_messages
from rolescope.reliability.disconnects import aborted_streams_run
from rolescope.reliability.overload import overload_run
from rolescope.reliability.process import ManagedService, write_test_roles
from rolescope.reliability.table import print_table
from rolescope.reliability.telemetry_faults import telemetry_faults_run
from rolescope.reliability.workload import (
    StreamOutcome,
    WriteTally,
    acknowledged_writes,
    read_stream,
    unique_message,
)

LOCKED = "database is locked"
# Figures that must be zero.
FAILURE_FIGURES = (
    "_lost", "_integrity_failures", "_locked_errors", "_client_5xx", "_streams_without_terminal",
    "_unclean_exits", "_not_back_to_baseline", "_failed_requests", "_other_5xx", "_broken_promises",
)


@dataclass
class ChaosFigures:
    rounds: int = 0
    acknowledged: int = 0
    lost: int = 0
    integrity_failures: int = 0
    locked_errors: int = 0
    client_5xx: int = 0
    streams_open: int = 0
    streams_without_terminal: int = 0
    streams_ended_by_drain: int = 0
    max_exit_s: float = 0.0
    unclean_exits: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self, prefix: str) -> dict[str, float]:
        values = {k: v for k, v in vars(self).items() if k != "notes"}
        return {f"{prefix}_{k}": float(v) for k, v in values.items()}


def service_env(workdir: Path, shutdown_timeout_s: float, db_path: Path) -> dict[str, str]:
    roles = write_test_roles(workdir / "roles")
    return {
        "ROLESCOPE_ROLES_PATH": str(roles),
        "ROLESCOPE_DB_PATH": str(db_path),
        "ROLESCOPE_SHUTDOWN_TIMEOUT_S": str(shutdown_timeout_s),
        "ROLESCOPE_LOG_LEVEL": "warning",
    }


def _client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(30.0, connect=2.0))


async def _stream_loop(client: httpx.AsyncClient, stop: asyncio.Event, outcomes: list[StreamOutcome]) -> None:
    while not stop.is_set():
        outcome = await read_stream(client, unique_message("stream"), role="slow")
        outcomes.append(outcome)
        if outcome.status == 0:
            await asyncio.sleep(0.02)


async def sigterm_rounds(
    workdir: Path, rounds: int, shutdown_timeout_s: float = 3.0, writers: int = 6, streamers: int = 6,
    load_s: float = 1.0,
) -> ChaosFigures:
    """SIGTERM a loaded service `rounds` times, restarting it each time."""
    figures = ChaosFigures()
    service = ManagedService(workdir / "sigterm", service_env(workdir / "sigterm", shutdown_timeout_s,
                                                               workdir / "sigterm" / "sessions.db"))
    for _ in range(rounds):
        await asyncio.to_thread(service.start)
        tally, outcomes, stop = WriteTally(), list[StreamOutcome](), asyncio.Event()
        async with _client(service.url) as client:
            tasks = [asyncio.create_task(acknowledged_writes(client, stop, tally, role="fast"))
                     for _ in range(writers)]
            tasks += [asyncio.create_task(_stream_loop(client, stop, outcomes)) for _ in range(streamers)]
            await asyncio.sleep(load_s)
            code, seconds = await asyncio.to_thread(service.terminate, shutdown_timeout_s + 5)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=shutdown_timeout_s + 30)
        figures.rounds += 1
        figures.max_exit_s = max(figures.max_exit_s, seconds)
        # uvicorn re-raises the SIGTERM it handled once shutdown is complete: -15 is a clean exit.
        if code not in (0, -15) or seconds > shutdown_timeout_s + 1:
            figures.unclean_exits += 1
            figures.notes.append(f"exit code {code} after {seconds:.2f} s")
        opened = [o for o in outcomes if o.status == 200]
        figures.streams_open += len(opened)
        figures.streams_without_terminal += sum(1 for o in opened if o.terminal is None)
        figures.streams_ended_by_drain += sum(1 for o in opened if o.terminal == "error")
        acked = tally.acked + [o.message for o in opened if o.acked]
        _account(figures, service, acked, tally)
    return figures


def _account(figures: ChaosFigures, service: ManagedService, acked: list[str], tally: WriteTally) -> None:
    figures.acknowledged += len(acked)
    lost = missing_messages(service.db_path, acked)
    figures.lost += len(lost)
    integrity = integrity_check(service.db_path)
    if integrity != "ok":
        figures.integrity_failures += 1
        figures.notes.append(f"integrity_check: {integrity[:200]}")
    figures.client_5xx += tally.failures
    figures.locked_errors += sum(1 for e in tally.server_errors if LOCKED in e)
    figures.notes.extend(tally.server_errors[:3])
    if lost:
        figures.notes.append(f"lost {len(lost)} acknowledged messages, e.g. {lost[0]}")


async def kill_rounds(workdir: Path, rounds: int, writers: int = 8, seed: int = 9) -> ChaosFigures:
    """kill -9 one of two processes writing the same SQLite file at random moments, `rounds` times."""
    rng = random.Random(seed)
    figures = ChaosFigures()
    db_path = workdir / "kill" / "sessions.db"
    victim = ManagedService(workdir / "kill" / "victim", service_env(workdir / "kill", 3.0, db_path))
    steady = ManagedService(workdir / "kill" / "steady", dict(victim.env))
    await asyncio.to_thread(steady.start)
    steady_tally, steady_stop = WriteTally(), asyncio.Event()
    async with _client(steady.url) as steady_client:
        steady_tasks = [asyncio.create_task(acknowledged_writes(steady_client, steady_stop, steady_tally,
                                                                role="fast")) for _ in range(writers // 2)]
        for _ in range(rounds):
            await asyncio.to_thread(victim.start)
            tally, stop = WriteTally(), asyncio.Event()
            async with _client(victim.url) as client:
                tasks = [asyncio.create_task(acknowledged_writes(client, stop, tally, role="fast"))
                         for _ in range(writers)]
                await asyncio.sleep(rng.uniform(0.05, 0.6))
                await asyncio.to_thread(victim.kill)
                stop.set()
                await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
            figures.rounds += 1
            _account(figures, victim, tally.acked, tally)
        steady_stop.set()
        await asyncio.wait_for(asyncio.gather(*steady_tasks), timeout=30)
    await asyncio.to_thread(steady.terminate, 10)
    _account(figures, steady, steady_tally.acked, steady_tally)
    figures.locked_errors += (victim.logs() + steady.logs()).count(LOCKED)
    return figures


async def run_all(
    workdir: Path, sigterm: int, kill: int, aborts: int, telemetry: bool = True, overload_s: float = 15.0
) -> dict[str, float]:
    figures: dict[str, float] = {}
    if sigterm:
        result = await sigterm_rounds(workdir, sigterm)
        figures.update(result.as_dict("sigterm"))
    if kill:
        result = await kill_rounds(workdir, kill)
        figures.update(result.as_dict("kill9"))
    if aborts:
        figures.update(await aborted_streams_run(workdir / "aborts", aborts))
    if telemetry:
        figures.update(await telemetry_faults_run(workdir / "telemetry"))
    if overload_s:
        figures.update(await asyncio.to_thread(overload_run, workdir / "overload", overload_s))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rolescope.reliability.chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sigterm", type=int, default=20, help="SIGTERM-under-load restarts (default 20)")
    parser.add_argument("--kill", type=int, default=100, help="kill -9 rounds under write load (default 100)")
    parser.add_argument("--aborts", type=int, default=1000, help="SSE streams aborted mid-reply")
    parser.add_argument("--no-telemetry", action="store_true", help="skip the OTLP endpoint fault run")
    parser.add_argument("--overload-seconds", type=float, default=15.0,
                        help="seconds of each open-model phase (0.5x, 2x capacity) per profile; 0 skips it")
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs and databases here")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rolescope-chaos-") as tmp:
        workdir = args.workdir or Path(tmp)
        figures = asyncio.run(run_all(workdir, args.sigterm, args.kill, args.aborts,
                                      telemetry=not args.no_telemetry, overload_s=args.overload_seconds))
    figures["wall_s"] = round(time.monotonic() - started, 1)
    print_table(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    bad = [name for name, value in figures.items() if value > 0 and name.endswith(FAILURE_FIGURES)]
    if bad:
        print("failed: " + ", ".join(bad))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
