"""Measuring mode for the live service: the process runs under memray while it takes shadow load.

`rolescope serve --measure-memory DIR` (or ROLESCOPE_MEASURE_MEMORY_DIR) makes
the composition root (`rolescope.serving.memory_meter`) start a memray tracker
with the app's lifespan and count chat requests by kind (the response's content
type tells SSE from JSON). The totals are written as a
baseline file (`mode: live`) on shutdown, and on SIGUSR1, which also starts a
new measuring window — so the same figures as `baseline record` can be taken
under real load. Reading a window's capture pauses the service for a moment;
that is the price of counting every allocation.

Live figures include everything the process does (HTTP parsing, /metrics
scrapes), so they are compared with other live figures, never with an
in-process replay.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from rolescope.memory.environment import capture_environment
from rolescope.memory.model import Baseline, RepeatFigures
from rolescope.memory.summary import summarise
from rolescope.memory.tracking import read_capture
from rolescope.rundir import MEMORY_FILE

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
CHAT_PATH = "/v1/chat"
LATEST = MEMORY_FILE


class LiveMemoryMeter:
    """One memray tracker per window; request counts by kind; a baseline file per window."""

    def __init__(
        self,
        out_dir: Path,
        role_versions: dict[str, str] | None = None,
        on_window: Callable[[Baseline], None] | None = None,
    ) -> None:
        self.out_dir = out_dir
        self.role_versions = role_versions or {}
        self.window = 0
        self.counts = {"chat": 0, "stream": 0}
        self.sessions: set[str] = set()
        self.anonymous_sessions = 0
        self._tracker: Any = None
        self._capture: Path | None = None
        self._started = 0.0
        self.on_window = on_window  # told each finished window's figures (the service gauges)

    def start(self) -> None:
        from memray import FileFormat, Tracker

        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.window += 1
        self._capture = self.out_dir / f"window-{self.window}.bin"
        self._capture.unlink(missing_ok=True)
        self.counts = {"chat": 0, "stream": 0}
        self.sessions, self.anonymous_sessions = set(), 0
        self._started = time.time()
        self._tracker = Tracker(
            str(self._capture), trace_python_allocators=True, file_format=FileFormat.ALL_ALLOCATIONS
        )
        self._tracker.__enter__()

    def count(self, kind: str, session: str | None) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if session:
            self.sessions.add(session)
        else:
            self.anonymous_sessions += 1

    def stop(self) -> Baseline | None:
        """End the window and write its figures; None when nothing was tracked."""
        if self._tracker is None or self._capture is None:
            return None
        self._tracker.__exit__(None, None, None)
        self._tracker = None
        totals = read_capture(self._capture)
        self._capture.unlink(missing_ok=True)
        requests = sum(self.counts.values())
        figures = RepeatFigures(
            requests=requests, sessions=len(self.sessions) + self.anonymous_sessions,
            allocations=totals.allocations, bytes=totals.bytes, peak_bytes=totals.peak_bytes,
            retained_bytes=totals.retained_bytes,
        )
        baseline = Baseline(
            mode="live",
            recorded_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            repeats=1,
            warmup=0,
            settings={"window": self.window, "seconds": round(time.time() - self._started, 3),
                      "requests_by_kind": dict(self.counts)},
            environment=capture_environment(role_versions=self.role_versions, traffic="live", subset="live"),
            kinds={"all": summarise([figures], [totals.sites])} if requests else {},
        )
        text = baseline.model_dump_json(indent=2, by_alias=True) + "\n"
        (self.out_dir / f"memory-window-{self.window}.json").write_text(text, encoding="utf-8")
        (self.out_dir / LATEST).write_text(text, encoding="utf-8")
        if self.on_window is not None:
            self.on_window(baseline)
        return baseline

    def rotate(self) -> None:
        self.stop()
        self.start()


def _session_from_body(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    value = data.get("session_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


class MemoryCountingMiddleware:
    """Counts /v1/chat requests by kind and session for the meter; passes everything through."""

    def __init__(
        self, app: Callable[[Scope, Receive, Send], Awaitable[None]], meter: LiveMemoryMeter
    ) -> None:
        self.app = app
        self.meter = meter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != CHAT_PATH:
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        session = query.get("session_id", [None])[0]
        body = bytearray()

        async def receive_and_keep() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body.extend(message.get("body", b""))
            return message

        async def send_and_count(message: Message) -> None:
            # Counted when the answer starts: a client may have read a whole SSE stream (and
            # closed the window) before the app's call returns.
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                streamed = headers.get(b"content-type", b"").startswith(b"text/event-stream")
                self.meter.count("stream" if streamed else "chat", session or _session_from_body(bytes(body)))
            await send(message)

        await self.app(scope, receive_and_keep, send_and_count)
