"""The interface a protocol offers the capturing proxy, and the plain data that crosses it.

A protocol recognises its chat requests by method and path, reads from a
request what a capture record needs (message, session, role, output-token
limit), and reads output tokens from the reply while its bytes pass through.
Nothing here touches a socket or a clock: the proxy feeds bytes, so every
protocol can be tested as pure functions.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

# A JSON reply larger than this is passed through but not read for its usage.
MAX_JSON_REPLY_BYTES = 1024 * 1024
SESSION_HEADER = "x-session-id"
EVENT_STREAM = "text/event-stream"
CLIENT_HEADER = "x-client-id"


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What a chat request says about itself."""

    message: str
    session_id: str | None = None  # None: the server assigns one (read from the reply) or there is none
    role: str | None = None
    client_id: str | None = None
    max_tokens: int | None = None
    stream: bool = False  # whether it asked for a streamed reply (the reply's content type has the last word)


@dataclass(frozen=True, slots=True)
class ReplyFacts:
    """What the reply said: output tokens and, where the server chose them, the session and role."""

    output_tokens: int
    session_id: str | None = None
    role: str | None = None


@dataclass(frozen=True, slots=True)
class HttpRequestView:
    """A request as the proxy received it: headers lower-cased, the body whole."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    def json_body(self) -> dict[str, Any] | None:
        try:
            document = json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None
        return document if isinstance(document, dict) else None


class ReplyReader(Protocol):
    def feed(self, chunk: bytes) -> None:
        """One piece of the reply body, as it arrived (any split, even inside a line)."""

    def finish(self) -> ReplyFacts:
        """What the reply said, once it ended (or broke off)."""


class ChatProtocol(Protocol):
    name: str

    def handles(self, method: str, path: str) -> bool:
        """Whether a request to this method and path may be one of this protocol's chat requests."""

    def read_request(self, request: HttpRequestView) -> RequestFacts | None:
        """The request's facts, or None when it is not a chat request after all (not captured)."""

    def reply_reader(self, event_stream: bool) -> ReplyReader:
        """A reader for an SSE reply (`event_stream`) or a JSON one."""


def as_text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def as_count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class SseEvents:
    """Splits a byte stream into server-sent events (name, data) as its pieces arrive.

    Only the framing rules of the SSE specification: `data:` lines join with
    newlines, `event:` names the event, a blank line dispatches; comments and
    `id:`/`retry:` lines carry nothing a capture record needs.
    """

    __slots__ = ("_data", "_event", "_partial")

    def __init__(self) -> None:
        self._partial = b""
        self._event = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[tuple[bytes, bytes]]:
        """The events this piece completes: (event name, data) pairs, the name b"message" by default."""
        text = self._partial + chunk if self._partial else chunk
        lines = text.splitlines(keepends=True)
        # An unfinished line, or a lone "\r" that may be the first half of "\r\n", waits for the next piece.
        self._partial = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
        events: list[tuple[bytes, bytes]] = []
        for raw in lines:
            line = raw.rstrip(b"\r\n")
            if not line:
                if self._data:
                    events.append((self._event or b"message", b"\n".join(self._data)))
                self._event, self._data = b"", []
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                self._event = line[6:].strip()
        return events

    def close(self) -> list[tuple[bytes, bytes]]:
        """An event the stream ended without its blank line (a well-formed stream has none)."""
        return self.feed(b"\n\n") if self._partial or self._data else []


class JsonBody:
    """Keeps a JSON reply's bytes (up to a cap) to read once it has ended."""

    __slots__ = ("_parts", "_size")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size <= MAX_JSON_REPLY_BYTES:
            self._parts.append(chunk)

    def document(self) -> dict[str, Any] | None:
        if self._size > MAX_JSON_REPLY_BYTES:
            return None
        try:
            value = json.loads(b"".join(self._parts))
        except (ValueError, UnicodeDecodeError):
            return None
        return value if isinstance(value, dict) else None


def load_json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


class Unreadable:
    """For a reply in an encoding the proxy cannot read (br, zstd): relayed, its tokens not counted."""

    def feed(self, chunk: bytes) -> None:
        return None

    def finish(self) -> ReplyFacts:
        return ReplyFacts(0)


class DecodingReader:
    """Feeds a reader the decompressed reply when the upstream compressed it (gzip or deflate).

    The client still receives the compressed bytes untouched; only the copy read
    for the capture record is decoded.
    """

    __slots__ = ("_decoder", "_inner")

    def __init__(self, inner: ReplyReader, encoding: str) -> None:
        self._inner = inner
        self._decoder = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)

    @staticmethod
    def supports(encoding: str) -> bool:
        return encoding in ("gzip", "deflate")

    def feed(self, chunk: bytes) -> None:
        try:
            self._inner.feed(self._decoder.decompress(chunk))
        except zlib.error:
            return

    def finish(self) -> ReplyFacts:
        return self._inner.finish()
