"""The client side of the connections benchmark: idle connections held open, and turns streamed on them.

Half WebSockets on `/v1/ws`, connected and silent; half HTTP/1.1 keep-alive
connections that streamed one SSE turn and wait for the next, as chat users do
between turns. A turn's figure is the time from the message sent to its first
token event, as the client sees it.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect

from rolescope.bench.service_overhead import MESSAGE

ACTIVE = 100
PACED = "paced"
OPEN_AT_ONCE = 100  # handshakes in flight while a level is being opened
_SSE_REQUEST = (
    "POST /v1/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    "Accept: text/event-stream\r\nContent-Length: {length}\r\n\r\n{body}"
)


@dataclass
class SseConnection:
    """An HTTP/1.1 keep-alive connection that streams one SSE turn at a time."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    role: str = "sherlock"

    async def turn(self) -> float:
        """Seconds from the request to the first token event; reads the stream to its end."""
        body = f'{{"message": "{MESSAGE}", "stream": true, "role": "{self.role}"}}'
        started = time.perf_counter()
        self.writer.write(_SSE_REQUEST.format(length=len(body), body=body).encode())
        first: float | None = None
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("the service closed an SSE connection")
            if first is None and line.startswith(b"event: token"):
                first = time.perf_counter() - started
            if line == b"0\r\n":  # the chunked body's terminator: the turn is over
                await self.reader.readline()
                return first if first is not None else time.perf_counter() - started


async def ws_turn(connection: ClientConnection) -> float:
    started = time.perf_counter()
    await connection.send(f'{{"message": "{MESSAGE}", "role": "{PACED}"}}')
    first: float | None = None
    while True:
        received = await connection.recv()
        frame = received if isinstance(received, str) else received.decode()
        if first is None and '"token"' in frame:
            first = time.perf_counter() - started
        if '"final"' in frame or '"error"' in frame:
            if '"error"' in frame:
                raise ConnectionError(f"error frame: {frame[:200]}")
            return first if first is not None else time.perf_counter() - started


@dataclass
class Pool:
    url: str
    host: str
    port: int
    websockets: list[ClientConnection] = field(default_factory=list)
    streams: list[SseConnection] = field(default_factory=list)
    failed_opens: int = 0

    @property
    def size(self) -> int:
        return len(self.websockets) + len(self.streams)

    async def _open_ws(self) -> None:
        url = self.url.replace("http://", "ws://") + "/v1/ws"
        connection = await connect(url, subprotocols=["rolescope.v1"], open_timeout=60)  # type: ignore[list-item]
        self.websockets.append(connection)

    async def _open_sse(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        stream = SseConnection(reader, writer)
        await stream.turn()  # a user who talked once and is now reading the answer
        self.streams.append(stream)

    async def grow(self, total: int) -> None:
        gate = asyncio.Semaphore(OPEN_AT_ONCE)

        async def one(opener: Callable[[], Awaitable[None]]) -> None:
            async with gate:
                try:
                    await opener()
                except Exception:  # refused, reset or timed out: counted, the level goes on
                    self.failed_opens += 1

        missing = total - self.size - self.failed_opens
        openers = [self._open_ws if index % 2 == 0 else self._open_sse for index in range(missing)]
        await asyncio.gather(*(one(opener) for opener in openers))

    def closed_early(self) -> tuple[int, int]:
        """(WebSockets, SSE connections) the service closed while they were held."""
        return (
            sum(1 for c in self.websockets if c.close_code is not None),
            sum(1 for s in self.streams if s.reader.at_eof()),
        )

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.websockets), return_exceptions=True)
        for stream in self.streams:
            stream.writer.close()


async def stream_for(pool: Pool, seconds: float) -> tuple[list[float], int]:
    """ACTIVE connections taking turns back to back for `seconds`: (TTFTs, failed turns)."""
    half = ACTIVE // 2
    ttfts: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds

    async def talk(turn: Callable[[], Awaitable[float]]) -> None:
        nonlocal failures
        while time.perf_counter() < deadline:
            try:
                ttfts.append(await turn())
            except Exception:  # a failed turn is a figure, not a crash
                failures += 1
                return

    talkers = [talk(functools.partial(ws_turn, c)) for c in pool.websockets[:half]]
    for stream in pool.streams[:half]:
        stream.role = PACED
    talkers += [talk(s.turn) for s in pool.streams[:half]]
    await asyncio.gather(*talkers)
    return ttfts, failures


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
