"""A WebSocket chat client that times each turn as a real client sees it: TTFT, inter-token gaps, end to end.

`read_turn` is pure: it folds the frames of one turn, each with the time it
arrived, into a `TurnTiming`, so the timing rules are tested without a socket.
`WsChatClient` is the blocking client around it (the `websockets` library's
sync client, which runs under gevent's patched sockets as well as in plain
threads): one connection, turns one after another, as a browser tab would hold
a conversation. A load user wraps it; it imports no Locust.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from rolescope.rundir import RequestSample

SUBPROTOCOL = "rolescope.v1"


@dataclass(frozen=True, slots=True)
class TurnTiming:
    """One turn as the client saw it; times in seconds from the moment the message was sent."""

    ok: bool
    status: int  # 200, the error frame's status, or 0 when the connection ended first
    e2e_s: float
    ttft_s: float | None = None
    itl_s: list[float] = field(default_factory=list)
    output_tokens: int = 0
    response: dict[str, Any] | None = None  # the final frame's object (the POST /v1/chat shape)
    error: str | None = None  # "code: message" of an error frame, or why the connection ended

    @property
    def tpot_s(self) -> float | None:
        """Mean time per output token after the first (the GenAI definition), from the client's side."""
        if self.ttft_s is None or self.output_tokens < 2:
            return None
        return (self.e2e_s - self.ttft_s) / (self.output_tokens - 1)

    @property
    def session_id(self) -> str | None:
        value = (self.response or {}).get("session_id")
        return value if isinstance(value, str) else None

    def as_sample(
        self, name: str, intended_start: float, start: float, session: str = "", turn: int = 0
    ) -> RequestSample:
        """The run directory's record of this turn (a streamed request)."""
        return RequestSample(
            name=name, kind="stream", intended_start=intended_start, start=start, ok=self.ok,
            status=self.status, e2e_s=self.e2e_s, ttft_s=self.ttft_s, tpot_s=self.tpot_s,
            itl_s=list(self.itl_s), output_tokens=self.output_tokens, error=self.error,
            session=session, turn=turn,
        )


def read_turn(frames: Iterable[tuple[float, str]], sent_at: float) -> TurnTiming:
    """Fold one turn's frames (arrival time, text) into its timing; stops at the terminal frame.

    A turn that runs out of frames before `final` or `error` (the server closed) is a failure
    with status 0, timed until the last frame that did arrive.
    """
    token_times: list[float] = []
    last = sent_at
    for arrived, text in frames:
        last = arrived
        try:
            frame = json.loads(text)
        except ValueError:
            return TurnTiming(False, 0, arrived - sent_at, error=f"not a JSON frame: {text[:80]!r}")
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "token":
            if frame.get("text"):
                token_times.append(arrived)
            continue
        ttft = token_times[0] - sent_at if token_times else None
        gaps = [later - earlier for earlier, later in itertools.pairwise(token_times)]
        if kind == "final":
            response = frame.get("response")
            usage = response.get("usage") if isinstance(response, dict) else None
            tokens = usage.get("output_tokens") if isinstance(usage, dict) else None
            return TurnTiming(
                True, 200, arrived - sent_at, ttft, gaps,
                tokens if isinstance(tokens, int) else len(token_times),
                response if isinstance(response, dict) else None,
            )
        if kind == "error":
            error = frame.get("error") or {}
            status = frame.get("status")
            return TurnTiming(
                False, status if isinstance(status, int) else 0, arrived - sent_at, ttft, gaps,
                len(token_times), error=f"{error.get('code')}: {error.get('message')}",
            )
    ttft = token_times[0] - sent_at if token_times else None
    ended = "the connection ended before the turn's last frame"
    return TurnTiming(False, 0, last - sent_at, ttft, error=ended)


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


class WsChatClient:
    """One chat WebSocket (`ws://host:port/v1/ws` or `/role/<name>`); `turn` sends a message and times it."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        key_in_query: bool = False,
        open_timeout: float = 10.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key and not key_in_query else None
        target = _with_query(url, api_key=api_key) if api_key and key_in_query else url
        self._clock = clock
        self.connection: ClientConnection = connect(
            target, additional_headers=headers, subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            open_timeout=open_timeout, compression=None, max_size=None,
        )

    def __enter__(self) -> WsChatClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.connection.close()

    def _frames(self, deadline: float) -> Iterator[tuple[float, str]]:
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                text = self.connection.recv(timeout=remaining)
                yield self._clock(), text if isinstance(text, str) else text.decode("utf-8", "replace")
        except (ConnectionClosed, TimeoutError):
            return

    def turn(
        self,
        message: str,
        *,
        session_id: str | None = None,
        role: str | None = None,
        idempotency_key: str | None = None,
        timeout: float = 60.0,
    ) -> TurnTiming:
        body: dict[str, str] = {"message": message}
        for key, value in (("session_id", session_id), ("role", role), ("idempotency_key", idempotency_key)):
            if value is not None:
                body[key] = value
        deadline = time.monotonic() + timeout
        sent_at = self._clock()
        try:
            self.connection.send(json.dumps(body))
        except ConnectionClosed as exc:
            return TurnTiming(False, 0, self._clock() - sent_at, error=f"connection closed: {exc}")
        timing = read_turn(self._frames(deadline), sent_at)
        if timing.ok or timing.status:
            return timing
        code = self.connection.close_code
        if code is not None:
            return replace(timing, error=f"closed {code}: {self.connection.close_reason or ''}".rstrip(": "))
        if time.monotonic() >= deadline:
            return replace(timing, error=f"no final or error frame within {timeout:g} s")
        return timing

    def conversation(
        self, messages: Sequence[str], *, role: str | None = None, think_time_s: float = 0.0
    ) -> list[TurnTiming]:
        """The messages as one session on this connection, each sent after the previous reply ended."""
        timings: list[TurnTiming] = []
        session: str | None = None
        for index, message in enumerate(messages):
            if index and think_time_s:
                time.sleep(think_time_s)
            timing = self.turn(message, session_id=session, role=role)
            timings.append(timing)
            session = timing.session_id or session
        return timings
