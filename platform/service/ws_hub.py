"""What every WebSocket connection of one app shares: its policy, the open connections, a bounded send queue.

`OpenWebSockets` lives on the service context: the upgrade reads its policy, each
connection registers while open, and the composition root waits on
`wait_closed` after an exit signal so that every connection has sent its
terminal frames and its close before the server closes the sockets itself
(uvicorn ends every open WebSocket with 1012 the moment it starts shutting down).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from rolescope.service.admission import AdmissionLimiter, RejectHook


@dataclass(frozen=True, slots=True)
class WsPolicy:
    idle_timeout_s: float = 300.0  # no client frame and no turn running for this long: closed (1000)
    send_queue_chars: int = 256 * 1024  # frames waiting for a slow reader, in characters
    max_frame_bytes: int = 64 * 1024  # a larger client frame closes the connection (1009)
    allowed_origins: frozenset[str] = field(default_factory=frozenset)  # beyond same-host and no Origin


class OpenWebSockets:
    """The open chat connections of one app: counted, and awaited on shutdown."""

    def __init__(
        self,
        policy: WsPolicy | None = None,
        admission: AdmissionLimiter | None = None,
        on_reject: RejectHook | None = None,
    ) -> None:
        self.policy = policy or WsPolicy()
        self.admission = admission  # the HTTP chat routes' limiter: each turn holds a slot while it runs
        self.on_reject = on_reject  # told the reason of each turn refused by `admission`
        self._open = 0
        self._all_closed: asyncio.Event | None = None

    @property
    def open(self) -> int:
        return self._open

    def opened(self) -> None:
        self._open += 1

    def closed(self) -> None:
        self._open -= 1
        if self._open == 0 and self._all_closed is not None:
            self._all_closed.set()

    async def wait_closed(self) -> None:
        """Returns once no connection is open (at once when none is)."""
        if self._open == 0:
            return
        self._all_closed = asyncio.Event()
        await self._all_closed.wait()


class SendQueue:
    """Frames on their way to one client, bounded: a reader too slow to keep up overflows it.

    Producers never wait: `put` refuses a frame (and sets `overflowed`) when the frames
    already waiting would exceed `max_chars`, so a client that stops reading costs at most
    that much memory here (plus the transport's own high-water mark) instead of a reply's
    worth per turn for as long as it stays connected.
    """

    def __init__(self, send: Callable[[str], Awaitable[None]], max_chars: int) -> None:
        self._send = send
        self.max_chars = max_chars
        self._frames: deque[str] = deque()
        self._chars = 0
        self._ready = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self.overflowed = asyncio.Event()

    @property
    def waiting_chars(self) -> int:
        return self._chars

    def put(self, frame: str) -> bool:
        if self.overflowed.is_set():
            return False
        # One frame is always taken, however long, so a final frame larger than the bound can pass.
        if self._frames and self._chars + len(frame) > self.max_chars:
            self.overflowed.set()
            return False
        self._frames.append(frame)
        self._chars += len(frame)
        self._ready.set()
        self._empty.clear()
        return True

    async def drained(self) -> None:
        await self._empty.wait()

    async def run(self) -> None:
        """Write frames in order until cancelled; a send error (the client left) ends it."""
        while True:
            if not self._frames:
                self._empty.set()
                self._ready.clear()
                await self._ready.wait()
                continue
            frame = self._frames[0]
            await self._send(frame)
            self._frames.popleft()
            self._chars -= len(frame)
