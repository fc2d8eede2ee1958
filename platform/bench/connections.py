"""How many connections one service instance holds, and what they cost the streams that are active.

One `rolescope serve` (one uvicorn worker, uvloop, SQLite) runs pinned to the first CPU this process may
use; this process is the client, pinned to the second, on one asyncio loop. It
opens idle connections up to 1,000, then 5,000, then 10,000 (`--quick`: 1,000
only), half WebSockets on `/v1/ws` that are connected and silent, half HTTP
keep-alive connections that streamed one SSE turn and now wait for the next, as
chat users do between turns. At each level 100 of them stream replies for a few
seconds (50 WebSocket turns, 50 SSE turns, back to back) and the figures are
taken. The active streams talk to `paced`, a copy of sherlock whose simulator
has TTFT 0 and 40 tokens/s (a model's pace: 100 streams are ~4,000 token events
a second, not a flood that would make TTFT a queue); the turn that opens an SSE
connection talks to sherlock made instant (TTFT 0, 100k tokens/s). The figures:

- server-added TTFT p50/p99: message sent to first token event, as the client
  sees it; the simulator adds nothing, so this is the service (and loopback);
- RSS per connection: the service's resident memory growth over the idle level,
  divided by the connections opened (psutil);
- failures: connections that could not be opened or closed early, turns that failed.

Goals: 10,000 held with 0 failures, TTFT p99 <= 5 ms at 100 active streams,
<= 64 KB RSS per idle connection. Each connection is a file descriptor on both
sides: the command raises its RLIMIT_NOFILE soft limit to the hard limit (the
service child inherits it) and says so when the hard limit is too low
(`ulimit -Hn`, or `LimitNOFILE=` for a systemd unit). On a shared machine the
latencies move with the load; the memory and failure figures do not.

    python -m rolescope.bench connections [--quick]
"""

from __future__ import annotations

import asyncio
import functools
import os
import resource
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from websockets.asyncio.client import ClientConnection, connect

from rolescope.bench.service_overhead import MESSAGE, cpu_pair, pin_threads
from rolescope.bench.telemetry_cost import fast_roles
from rolescope.errors import EnvironmentProblem
from rolescope.procstats import cpu_seconds, rss_bytes

LEVELS = (1_000, 5_000, 10_000)
ACTIVE = 100
PACED = "paced"
OPEN_AT_ONCE = 100  # handshakes in flight while a level is being opened
TTFT_GOAL_MS = 5.0
RSS_GOAL_KB = 64.0
_SSE_REQUEST = (
    "POST /v1/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    "Accept: text/event-stream\r\nContent-Length: {length}\r\n\r\n{body}"
)


def raise_fd_limit(needed: int) -> int:
    """Raise this process's open-files soft limit to its hard limit; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if target < needed:
        raise EnvironmentProblem(
            f"{needed} connections need {needed} file descriptors, but the hard limit is {hard}; "
            "raise it (`ulimit -Hn`, or LimitNOFILE= in a systemd unit) and run again"
        )
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


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


async def measure(url: str, pid: int, levels: tuple[int, ...], seconds: float) -> dict[str, float]:
    host, port = url.removeprefix("http://").split(":")
    pool = Pool(url, host, int(port))
    await pool.grow(2)
    await stream_for(pool, 1.0)  # warm-up: both paths' code and first pages touched before the baseline
    baseline, warm = rss_bytes(pid), pool.size
    figures: dict[str, float] = {}
    try:
        for level in levels:
            started = time.perf_counter()
            await pool.grow(level)
            opened_s = time.perf_counter() - started
            await asyncio.sleep(1)  # let the service settle before reading its memory
            per_connection = (rss_bytes(pid) - baseline) / max(pool.size - warm, 1)
            cpu_before, wall_before = cpu_seconds(pid), time.perf_counter()
            ttfts, failed_turns = await stream_for(pool, seconds)
            # Near 1.0 the service's core is the bottleneck; well below with high TTFT, other work starved it.
            busy = (cpu_seconds(pid) - cpu_before) / (time.perf_counter() - wall_before)
            ws_closed, sse_closed = pool.closed_early()
            failures = pool.failed_opens + ws_closed + sse_closed + failed_turns
            figures |= {
                f"open_{level}": float(pool.size),
                f"failures_{level}": float(failures),
                f"ttft_p50_ms_{level}": percentile(ttfts, 0.5) * 1e3,
                f"ttft_p99_ms_{level}": percentile(ttfts, 0.99) * 1e3,
                f"rss_kb_per_connection_{level}": per_connection / 1024,
                f"turns_{level}": float(len(ttfts)),
                f"service_cpu_busy_{level}": busy,
            }
            print(
                f"  {level:>6,} wanted: {pool.size:,} open (in {opened_s:.1f} s), {failures} failures "
                f"({pool.failed_opens} opens, {ws_closed} WebSockets and {sse_closed} SSE connections "
                f"closed, {failed_turns} turns); "
                f"TTFT p50 {figures[f'ttft_p50_ms_{level}']:.1f} ms, "
                f"p99 {figures[f'ttft_p99_ms_{level}']:.1f} ms "
                f"over {len(ttfts):,} turns at {ACTIVE} active; "
                f"{figures[f'rss_kb_per_connection_{level}']:.1f} KB RSS per connection; "
                f"service CPU {busy:.2f} of a core while streaming",
                flush=True,
            )
    finally:
        await pool.close()
    return figures


def paced_role(folder: Path) -> Path:
    role = yaml.safe_load((folder / "sherlock.yaml").read_text())
    role["name"] = PACED
    role["inference"]["simulator"].update({"ttft_ms": 0, "tokens_per_second": 40, "jitter": 0})
    (folder / f"{PACED}.yaml").write_text(yaml.safe_dump(role))
    return folder


def event_loop_runner() -> asyncio.Runner:
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def run(quick: bool = False) -> dict[str, float]:
    """Idle connections held and active streams' TTFT at each level; prints and returns the figures."""
    from rolescope.serving.launcher import launch_service

    levels = LEVELS[:1] if quick else LEVELS
    seconds = 6.0
    limit = raise_fd_limit(levels[-1] + 1_000)
    service_cpu, client_cpu = cpu_pair()
    # Idle limits beyond the run's length: opening 10,000 connections on a busy machine takes
    # longer than the 75 s keep-alive default, and a connection the server closes on purpose
    # when idle is not a connection it failed to hold.
    env = {
        "ROLESCOPE_LOG_LEVEL": "warning", "ROLESCOPE_CONCURRENCY_LIMIT": "0",
        "ROLESCOPE_KEEP_ALIVE_S": "1800", "ROLESCOPE_WS_IDLE_TIMEOUT_S": "1800",
    }
    with tempfile.TemporaryDirectory(prefix="rolescope-bench-") as tmp:
        work = Path(tmp)
        roles = paced_role(fast_roles(work / "roles"))
        with launch_service(roles_path=roles, db_path=work / "s.db", env=env) as service:
            pin_threads(service.pid, service_cpu)
            if client_cpu is not None:
                os.sched_setaffinity(0, {int(client_cpu)})
            print(
                f"connections (service pid {service.pid} on CPU {service_cpu}, one worker, uvloop; "
                f"client on CPU {client_cpu}; RLIMIT_NOFILE {limit}; "
                f"{ACTIVE} active for {seconds:.0f} s a level):",
                flush=True,
            )
            with event_loop_runner() as runner:
                figures = runner.run(measure(service.url, service.pid, levels, seconds))
    worst = max(figures[f"ttft_p99_ms_{level}"] for level in levels)
    rss = max(figures[f"rss_kb_per_connection_{level}"] for level in levels)
    failures = sum(figures[f"failures_{level}"] for level in levels)
    print(
        f"  goals: {levels[-1]:,} held with 0 failures ({failures:.0f}), TTFT p99 <= {TTFT_GOAL_MS} ms "
        f"({worst:.1f}), <= {RSS_GOAL_KB:.0f} KB per connection ({rss:.1f})"
    )
    print("  the machine may be shared: latencies move with its load; memory and failures do not")
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
