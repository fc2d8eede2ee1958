"""Client-side reading of a server-sent-event chat stream, as its bytes arrive.

The streaming user feeds each line as it arrives, with the time it arrived;
this keeps the timings (first non-empty token, gaps between tokens) and
recognises the final response event and the in-stream `error` event. It is
pure so it can be tested without a network or Locust.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from rolescope.event_stream import EventStreamDecoder

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
    """Feed it the stream's bytes (lines or chunks of any size) in arrival order, each with its time.

    Decoding is `rolescope.event_stream`'s, per the SSE standard. The time stamp is
    taken by the caller when the bytes arrive, so parsing never enters a measured
    latency; it runs once per token, though, and the load generator must cost
    little more per request than a bare POST, so the common token event skips
    JSON decoding.
    """

    __slots__ = ("_decoder", "reading")

    def __init__(self) -> None:
        self.reading = StreamReading()
        self._decoder = EventStreamDecoder()

    def feed(self, chunk: bytes, now: float) -> None:
        for name, data, _ in self._decoder.feed(chunk):
            if name == "token":
                # The role service's token event, `{"text": "…", …}`, recognised without decoding
                # the JSON but whatever its spacing; any other shape takes the general path.
                found = _TOKEN_TEXT.match(data)
                if found is not None:
                    self.reading.events += 1
                    if found.group(1) is None:  # not an empty chunk
                        self.reading.token_times.append(now)
                    continue
            self._dispatch(name, data, now)

    def close(self, now: float) -> StreamReading:
        """The reading so far; an event the stream did not finish with an empty line is not counted."""
        return self.reading

    def _dispatch(self, event: str, raw: str, now: float) -> None:
        reading = self.reading
        reading.events += 1
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


# `{"text": "` at the start of a token event, with any JSON whitespace; group 1 matches an empty text.
_TOKEN_TEXT = re.compile(r'\{[ \t\n\r]*"text"[ \t\n\r]*:[ \t\n\r]*"(")?')
