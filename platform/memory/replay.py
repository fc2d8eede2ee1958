"""Replaying shadow traffic in-process through the real app (every layer, SQLite included).

The app is driven through httpx's ASGI transport: no sockets, so what memray
counts is the service's own work. Sessions run concurrently (each keeps its turn
order) so their streams interleave, and the simulator's delays are bare
event-loop yields (`Settings.simulator_delays` off): timing is judged elsewhere,
within one load run; here only what a request allocates matters. Real sleeps,
even of 10 µs, arm timers, and how many loop iterations (each allocating a
little in asyncio's `_run_once` and the selector) they cost then depends on the
wall clock: that spread the repeats by 1-2.6 % and was nobody's request.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import httpx

    from rolescope.loadtests.traffic_format import TrafficRecord
    from rolescope.settings import Settings

# The simulator's fastest allowed timing, for the plans' arithmetic (the delays are not slept).
FAST_TIMING = {"ttft_ms": 0, "tokens_per_second": 100_000, "jitter": 0}
# The longest timeout a role may set: on a busy machine (memray slows every allocation, 64 sessions
# share the loop) a stream could pass a role's own 3 s and fail the recording; the timeout is a
# deadline check, not work, so lifting it changes no allocation count.
REPLAY_TIMEOUT_MS = 600_000
SESSION_CONCURRENCY = 64


def kind_of(record: TrafficRecord) -> str:
    return "stream" if record.stream else "chat"


def fast_roles(source: Path, into: Path) -> Path:
    """Copies of the role files with zero simulator timing and the longest timeout (versions unchanged)."""
    from rolescope.roles import ROLE_SUFFIXES

    into.mkdir(parents=True, exist_ok=True)
    files = [source] if source.is_file() else sorted(
        p for p in source.iterdir() if p.suffix in ROLE_SUFFIXES and not p.name.startswith(".")
    )
    for file in files:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
        inference = data.setdefault("inference", {}) if isinstance(data, dict) else {}
        if inference.get("backend", "simulator") == "simulator":
            inference.setdefault("simulator", {}).update(FAST_TIMING)
            inference["timeout_ms"] = REPLAY_TIMEOUT_MS
        (into / file.name).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return into


@dataclass
class ReplayOutcome:
    requests: int = 0
    errors: int = 0
    sessions: int = 0


async def _send(client: httpx.AsyncClient, record: TrafficRecord, session_id: str) -> bool:
    body = {"message": record.message, "session_id": session_id, "role": record.role, "stream": record.stream}
    headers = {"accept": "text/event-stream"} if record.stream else {}
    response = await client.post("/v1/chat", json=body, headers=headers)
    ok = response.status_code < 400 and (not record.stream or "event: error" not in response.text)
    return ok


async def replay(
    client: httpx.AsyncClient, records: Sequence[TrafficRecord], prefix: str
) -> ReplayOutcome:
    """Send every record; sessions run side by side, turns within a session in their order."""
    sessions: dict[str, list[TrafficRecord]] = {}
    for record in sorted(records, key=lambda r: (r.arrival, r.turn)):
        sessions.setdefault(record.session, []).append(record)
    outcome = ReplayOutcome(sessions=len(sessions))
    gate = asyncio.Semaphore(SESSION_CONCURRENCY)

    async def run_session(name: str, turns: list[TrafficRecord]) -> None:
        async with gate:
            for record in turns:
                ok = await _send(client, record, f"{prefix}-{name}"[:128])
                outcome.requests += 1
                outcome.errors += 0 if ok else 1

    await asyncio.gather(*(run_session(name, turns) for name, turns in sessions.items()))
    return outcome


class InProcessService:
    """The real app with its lifespan running, and an httpx client wired to it through ASGI."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stack = AsyncExitStack()
        self._scratch = tempfile.TemporaryDirectory(prefix="rolescope-replay-")
        self.client: Any = None

    async def __aenter__(self) -> InProcessService:
        import httpx

        from rolescope.serving.app import create_app, running

        scratch = Path(self._scratch.name)
        settings = self._settings.model_copy(
            update={
                "roles_path": fast_roles(self._settings.roles_path, scratch / "roles"),
                "db_path": scratch / "replay.db",
                "simulator_delays": False,
            }
        )
        app = create_app(settings)
        await self._stack.enter_async_context(running(app))
        self.client = await self._stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://rolescope.replay", timeout=60
            )
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()
        self._scratch.cleanup()
