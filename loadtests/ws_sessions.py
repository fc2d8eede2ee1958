"""The WebSocket each replayed session holds: opened on its first turn, closed after its last or on error.

A real chat client keeps one connection for a conversation, so every turn of
a session goes over the same socket; a failed turn drops the connection (the
next turn of that session opens a fresh one, as a client would reconnect).
Blocking I/O with the `websockets` sync client, which runs on gevent's
patched sockets and threads inside Locust as well as in plain threads; no
Locust import here. One turn runs at a time per session (the server answers a
second frame with `turn_in_progress`), so a turn due while the previous one
still streams waits its turn, and that wait counts in its latency.
"""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from rolescope.loadtests.targets.base import FrameReader, HttpCall
from rolescope.loadtests.targets.websocket import SUBPROTOCOL


@dataclass(frozen=True, slots=True)
class WsOutcome:
    """How a turn's exchange went below the frames: `failure` is None when the reader saw the turn end."""

    status: int
    failure: str | None
    opened: bool  # this turn opened the session's connection


def ws_url(host: str, path: str) -> str:
    """`http(s)://host[/prefix]` and a path as the `ws(s)://` URL to upgrade at."""
    parts = urlsplit(host)
    scheme = {"https": "wss", "wss": "wss"}.get(parts.scheme, "ws")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, "", ""))


def client_tls(insecure: bool, ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class WsSessions:
    """Open connections by session id, for one load process."""

    def __init__(self, host: str, timeout_s: float, tls: ssl.SSLContext | None = None) -> None:
        self._host = host
        self._timeout_s = timeout_s
        self._tls = tls if urlsplit(host).scheme in ("https", "wss") else None
        self._open: dict[str, ClientConnection] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._waiting: dict[str, int] = {}  # turns holding or waiting for each session's lock
        self.opened = 0  # connections opened so far, for tests and the curious

    def open_count(self) -> int:
        return len(self._open)

    def turn(self, session_id: str, call: HttpCall, reader: FrameReader, *, last: bool) -> WsOutcome:
        """Send the call's frame on the session's connection and feed `reader` until the turn ends."""
        lock = self._locks.setdefault(session_id, threading.Lock())
        self._waiting[session_id] = self._waiting.get(session_id, 0) + 1
        try:
            with lock:
                outcome = self._turn(session_id, call, reader)
                if last or outcome.failure is not None:
                    self.close(session_id)
        finally:
            # The lock outlives the turn while another turn of the session waits for it: a fresh
            # lock would let two turns share (and one close) the connection.
            self._waiting[session_id] -= 1
            if not self._waiting[session_id]:
                del self._waiting[session_id]
                self._locks.pop(session_id, None)
        return outcome

    def _turn(self, session_id: str, call: HttpCall, reader: FrameReader) -> WsOutcome:
        connection = self._open.get(session_id)
        opened = connection is None
        if connection is None:
            try:
                connection = self._connect(call)
            except InvalidStatus as exc:
                status = exc.response.status_code
                body = exc.response.body.decode("utf-8", "replace")[:120] if exc.response.body else ""
                return WsOutcome(status, f"upgrade refused: HTTP {status} {body}".strip()[:200], True)
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                return WsOutcome(0, f"cannot connect: {type(exc).__name__}: {exc}"[:200], True)
            self._open[session_id] = connection
            self.opened += 1
        deadline = time.monotonic() + self._timeout_s
        try:
            connection.send((call.body or b"").decode("utf-8"))
            while not reader.ended:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return WsOutcome(0, f"no final or error frame within {self._timeout_s:g} s", opened)
                frame = connection.recv(timeout=remaining)
                reader.feed(frame.encode() if isinstance(frame, str) else frame, time.time())
        except ConnectionClosed as exc:
            reason = (
                f"closed {exc.rcvd.code}: {exc.rcvd.reason}" if exc.rcvd else "closed without a close frame"
            )
            return WsOutcome(0, f"{reason} mid-turn".replace(":  mid", " mid")[:200], opened)
        except TimeoutError:
            return WsOutcome(0, f"no final or error frame within {self._timeout_s:g} s", opened)
        except OSError as exc:
            return WsOutcome(0, f"connection broken: {type(exc).__name__}: {exc}"[:200], opened)
        return WsOutcome(reader.status, None, opened)

    def _connect(self, call: HttpCall) -> ClientConnection:
        return connect(
            ws_url(self._host, call.path),
            additional_headers=dict(call.headers),
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            open_timeout=self._timeout_s,
            ssl=self._tls,
            compression=None,  # per-message compression would delay and batch the token frames
            max_size=None,
            # Each turn is read to its end at once, so frames never pile up; without a queue bound
            # the client never pauses its reader, a lock handoff between greenlets under gevent.
            max_queue=None,
        )

    def close(self, session_id: str) -> None:
        connection = self._open.pop(session_id, None)
        if connection is not None:
            connection.close()
