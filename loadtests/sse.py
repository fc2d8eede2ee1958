"""Client-side reading of a server-sent-event chat stream, line by line.

The streaming user feeds each line as it arrives, with the time it arrived;
this keeps the timings (first non-empty token, gaps between tokens) and
recognises the final response event and the in-stream `error` event. It is
pure so it can be tested without a network or Locust.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

TOKEN_KEYS: tuple[str, ...] = ("token", "text", "delta", "content")
FINAL_EVENTS = frozenset({"done", "final", "response", "complete", "end", "message_end"})
# Fewer tokens than this cannot tell a stream from a single write.
ALL_AT_ONCE_MIN_TOKENS = 3
ALL_AT_ONCE_SPAN_S = 0.0005


@dataclass(slots=True)
class StreamReading:
    token_times: list[float] = field(default_factory=list)
    final: dict[str, Any] | None = None
    error: str | None = None
    events: int = 0

    @property
    def first_token_at(self) -> float | None:
        return self.token_times[0] if self.token_times else None

    def output_tokens(self) -> int:
        usage = (self.final or {}).get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("output_tokens"), int):
            return int(usage["output_tokens"])
        return len(self.token_times)

    def inter_token_latencies(self) -> list[float]:
        times = self.token_times
        return [later - earlier for earlier, later in itertools.pairwise(times)]

    def arrived_all_at_once(self) -> bool:
        times = self.token_times
        return len(times) >= ALL_AT_ONCE_MIN_TOKENS and times[-1] - times[0] < ALL_AT_ONCE_SPAN_S


def _token_text(payload: Any) -> str:
    if isinstance(payload, str):
        return payload
    if isinstance(payload, dict):
        for key in TOKEN_KEYS:
            value = payload.get(key)
            if isinstance(value, str):
                return value
        choices = payload.get("choices")  # OpenAI-compatible chunks
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            delta = choices[0].get("delta") or {}
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                return str(delta["content"])
    return ""


class StreamParser:
    """Feed it raw lines (bytes, with or without the line ending) in arrival order.

    Lines stay bytes and the common token event (`{"text": "…"`) is recognised
    without JSON decoding: the parser runs once per token, and the load
    generator must cost little more per request than a bare POST.
    """

    __slots__ = ("_data", "_event", "reading")

    def __init__(self) -> None:
        self.reading = StreamReading()
        self._event = b"message"
        self._data: list[bytes] = []

    def feed(self, line: bytes, now: float) -> None:
        if line.startswith(b"data:"):
            self._data.append(line[5:].strip())
        elif line.startswith(b"event:"):
            self._event = line[6:].strip()
        elif not line.strip():
            self._dispatch(now)
        # comments (":" keep-alives), id: and retry: lines carry no timing information

    def close(self, now: float) -> StreamReading:
        self._dispatch(now)
        return self.reading

    def _dispatch(self, now: float) -> None:
        data, event = self._data, self._event
        if not data:
            self._event = b"message"
            return
        self._event, self._data = b"message", []
        reading = self.reading
        reading.events += 1
        if event == b"token" and len(data) == 1:
            raw = data[0]
            if raw.startswith(_EMPTY_TEXT):
                return
            if raw.startswith(_TEXT):
                reading.token_times.append(now)
                return
        text = b"\n".join(data).decode("utf-8", "replace")
        self._dispatch_slow(event.decode("utf-8", "replace"), text, now)

    def _dispatch_slow(self, event: str, raw: str, now: float) -> None:
        reading = self.reading
        if raw == "[DONE]":
            reading.final = reading.final or {}
            return
        try:
            payload: Any = json.loads(raw)
        except ValueError:
            payload = raw
        if event == "error" or (isinstance(payload, dict) and "error" in payload and event != "token"):
            detail = payload.get("error", payload) if isinstance(payload, dict) else payload
            if isinstance(detail, dict):
                detail = detail.get("message") or detail.get("code") or detail
            reading.error = str(detail)[:200]
            return
        if event in FINAL_EVENTS or (isinstance(payload, dict) and "usage" in payload and "role" in payload):
            reading.final = payload if isinstance(payload, dict) else {"content": payload}
            return
        if _token_text(payload):
            reading.token_times.append(now)


# The role service's token events: `{"text": "...", "index": n}`.
_TEXT = b'{"text": "'
_EMPTY_TEXT = b'{"text": ""'
