"""Client-side load for reliability runs: acknowledged writes, SSE streams, aborted streams.

A message counts as acknowledged when the service answered it with a complete
reply (HTTP 200 JSON, or an SSE stream's final event): from then on it must
survive any restart or crash. Every message is unique, so what the store holds
afterwards can be checked message by message.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

from rolescope.event_stream import EventStreamDecoder, ServerSentEvent

# Events that end a stream (rolescope.service.sse): `done` with the full answer, or `error`.
TERMINAL_EVENTS = frozenset({"done", "error"})


@dataclass
class WriteTally:
    acked: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    failures: int = 0

    def record_error(self, text: str) -> None:
        self.failures += 1
        if len(self.server_errors) < 50:
            self.server_errors.append(text[:300])


def error_code(text: str) -> str | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code")) if isinstance(error, dict) else None


def unique_message(prefix: str = "ack") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


async def acknowledged_writes(
    client: httpx.AsyncClient,
    stop: asyncio.Event,
    tally: WriteTally,
    role: str | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """POST one unique message after another until `stop`; record what was acknowledged."""
    while not stop.is_set():
        message = unique_message()
        try:
            response = await client.post("/v1/chat", json=_body(message, role), headers=headers)
        except httpx.HTTPError as exc:
            # Expected when the process is killed or drained: never acknowledged, so never owed.
            tally.outcomes[f"transport:{type(exc).__name__}"] += 1
            await asyncio.sleep(0.01)
            continue
        tally.outcomes[str(response.status_code)] += 1
        if response.status_code == 200:
            tally.acked.append(message)
        elif response.status_code == 503 and error_code(response.text) == "overloaded":
            await asyncio.sleep(0.01)  # admission control doing its job
        elif response.status_code >= 500:
            # Includes 503 store_unavailable: a locked or failing database must never reach a client.
            tally.record_error(f"{response.status_code} {response.text}")


@dataclass(frozen=True, slots=True)
class StreamOutcome:
    status: int
    events: int
    terminal: str | None  # the name of the terminal event, None when the stream just stopped
    message: str
    acked: bool


def is_final_payload(data: str) -> bool:
    try:
        body = json.loads(data)
    except ValueError:
        return False
    return isinstance(body, dict) and "content" in body and "session_id" in body


def _body(message: str, role: str | None, stream: bool = False) -> dict[str, object]:
    body: dict[str, object] = {"message": message, "stream": stream}
    if role is not None:
        body["role"] = role
    return body


async def read_stream(
    client: httpx.AsyncClient, message: str, role: str | None = None, headers: dict[str, str] | None = None
) -> StreamOutcome:
    """One streamed chat, read to its end; reports whether a terminal event arrived."""
    decoder = EventStreamDecoder()
    events: list[ServerSentEvent] = []
    status = 0
    try:
        async with client.stream(
            "POST", "/v1/chat", json=_body(message, role, stream=True), headers=headers
        ) as response:
            status = response.status_code
            async for chunk in response.aiter_bytes():
                events += decoder.feed(chunk)
    except httpx.HTTPError:
        pass
    terminal = None
    acked = False
    if events:
        name, data, _ = events[-1]
        if name in TERMINAL_EVENTS:
            terminal = name
            acked = name != "error" and is_final_payload(data)
    return StreamOutcome(status=status, events=len(events), terminal=terminal, message=message, acked=acked)


async def aborted_stream(client: httpx.AsyncClient, role: str | None = None, after_events: int = 2) -> bool:
    """Open a stream, read a few events, then drop the connection mid-reply; True if it was mid-reply."""
    seen = 0
    decoder = EventStreamDecoder()
    body = _body(unique_message("abort"), role, stream=True)
    async with client.stream("POST", "/v1/chat", json=body) as r:
        if r.status_code != 200:
            return False
        async for chunk in r.aiter_bytes():
            seen += len(decoder.feed(chunk))
            if seen >= after_events:
                return True
    return False
