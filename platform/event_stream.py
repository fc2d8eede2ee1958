"""An incremental decoder for `text/event-stream` (server-sent events), per the WHATWG HTML standard.

Every SSE client in rolescope reads through this one decoder: the load
generator's streaming user (over Locust's raw socket), the OpenAI-compatible
inference backend (over httpx), the reliability workloads and the tests. Feed
it bytes as they arrive, in chunks of any size; it returns the events that
those bytes completed. The rules it follows (§9.2.6 "Interpreting an event
stream"):

- lines end in CRLF, LF or a lone CR, and a CRLF may be split across chunks;
- a line starting with `:` is a comment; `field: value` drops one space after
  the colon; a line without a colon is a field with an empty value;
- `data` lines accumulate, joined by LF; `event` names the event (default
  `message`); `id` sets the last event id (ignored if it holds NUL); `retry`
  takes ASCII digits only (kept as `retry_ms`); unknown fields are ignored;
- an empty line dispatches the event, unless no `data` line was seen;
- a leading UTF-8 byte-order mark is skipped, and text is decoded as UTF-8
  with replacement characters;
- an event not terminated by an empty line when the stream ends is discarded.

It does no I/O and keeps no clocks, so callers time each event themselves.
"""

from __future__ import annotations

from typing import Final, NamedTuple

DEFAULT_EVENT: Final = "message"
_BOM: Final = b"\xef\xbb\xbf"


class ServerSentEvent(NamedTuple):
    event: str
    data: str
    id: str = ""  # the last event id in force when this event was dispatched


class EventStreamDecoder:
    # The load generator feeds every line of every stream through here, so the common
    # case (one whole line per call) takes few steps; a tuple is the cheapest event to build.
    __slots__ = ("_at_start", "_buffer", "_data", "_event", "_last_id", "_retry", "_skip_lf")

    def __init__(self) -> None:
        self._buffer = b""
        self._skip_lf = False  # the previous chunk ended in CR: a leading LF completes that CRLF
        self._at_start = True
        self._event = ""
        self._data: list[str] = []
        self._last_id = ""
        self._retry: int | None = None

    @property
    def last_event_id(self) -> str:
        return self._last_id

    @property
    def retry_ms(self) -> int | None:
        """The reconnection time the server asked for, if it sent one."""
        return self._retry

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """The events completed by `chunk` (bytes as they arrived, any size, possibly empty)."""
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if self._buffer:
            chunk, self._buffer = self._buffer + chunk, b""
        if self._at_start and chunk:
            if len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                self._buffer = chunk  # perhaps the start of a byte-order mark: wait for more
                return []
            self._at_start = False
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
        # bytes.splitlines splits on exactly the three SSE line endings: CRLF, LF and CR.
        lines = chunk.splitlines()
        if chunk.endswith(b"\r"):
            self._skip_lf = True
        elif lines and not chunk.endswith(b"\n"):
            self._buffer = lines.pop()  # an unfinished last line
        events: list[ServerSentEvent] = []
        for line in lines:
            if not line:
                data = self._data
                if data:
                    events.append(
                        ServerSentEvent(self._event or DEFAULT_EVENT, "\n".join(data), self._last_id)
                    )
                    self._data = []
                self._event = ""
                continue
            name, _, value = line.partition(b":")
            if not name:
                continue  # a comment (keep-alives are comments)
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                self._data.append(value.decode("utf-8", "replace"))
            elif name == b"event":
                self._event = value.decode("utf-8", "replace")
            elif name == b"id":
                if b"\0" not in value:
                    self._last_id = value.decode("utf-8", "replace")
            elif name == b"retry" and value.isdigit() and value.isascii():
                self._retry = int(value)
        return events


def decode_all(body: bytes) -> list[ServerSentEvent]:
    """Every complete event of a whole stream body."""
    return EventStreamDecoder().feed(body)
