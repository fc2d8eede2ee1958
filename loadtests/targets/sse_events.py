"""Server-sent events framed from raw lines, for adapters that read generic event payloads.

The native protocol's reader (`rolescope.loadtests.sse`) keeps its byte-level
fast path; OpenAI chunks and template events need each event's name and data,
so this keeps only the framing rules of the SSE specification: `data:` lines
join with newlines, `event:` names the event, a blank line dispatches, comments
and `id:`/`retry:` carry nothing to time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    data: str


class SseFramer:
    __slots__ = ("_data", "_event")

    def __init__(self) -> None:
        self._event = ""
        self._data: list[bytes] = []

    def feed(self, line: bytes) -> SseEvent | None:
        """The event this line completes, if it is the blank line ending one."""
        line = line.rstrip(b"\r\n")
        if line.startswith(b"data:"):
            value = line[5:]
            self._data.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            self._event = line[6:].strip().decode("utf-8", "replace")
        elif not line:
            return self._dispatch()
        return None

    def close(self) -> SseEvent | None:
        """A last event the stream ended without its blank line (a well-formed stream has none)."""
        return self._dispatch()

    def _dispatch(self) -> SseEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return SseEvent(event or "message", b"\n".join(data).decode("utf-8", "replace"))
