"""The WebSocket protocol's pure parts: frame parsing, origins, keys on the upgrade, the send queue."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rolescope.service.auth import presented_websocket_key
from rolescope.service.shutdown import DrainSignal
from rolescope.service.ws_frames import (
    FrameError,
    TurnRequest,
    error_frame,
    final_frame,
    origin_allowed,
    parse_origins,
    parse_turn,
)
from rolescope.service.ws_hub import OpenWebSockets, SendQueue


def test_a_valid_frame_becomes_a_turn() -> None:
    frame = {"message": "Hi", "session_id": "abcdefgh", "role": "sherlock", "idempotency_key": "k1"}
    parsed = parse_turn(json.dumps(frame))
    assert parsed == TurnRequest(message="Hi", session_id="abcdefgh", role="sherlock", idempotency_key="k1")


def test_every_problem_of_a_frame_is_named_at_once() -> None:
    parsed = parse_turn('{"message": "", "session_id": "x", "stream": true}')
    assert isinstance(parsed, FrameError) and (parsed.status, parsed.code) == (422, "invalid_request")
    for field in ("message", "session_id", "stream"):
        assert field in parsed.message


@pytest.mark.parametrize(("text", "status"), [("{nope", 400), ("[1, 2]", 422), ('"hello"', 422), ("", 400)])
def test_frames_that_are_not_json_objects_are_refused(text: str, status: int) -> None:
    parsed = parse_turn(text)
    assert isinstance(parsed, FrameError) and parsed.status == status


@given(st.text(max_size=200))
def test_any_text_parses_to_a_turn_or_an_error_never_an_exception(text: str) -> None:
    assert isinstance(parse_turn(text), (TurnRequest, FrameError))


def test_outgoing_frames_carry_their_type() -> None:
    assert json.loads(final_frame({"content": "x"})) == {"type": "final", "response": {"content": "x"}}
    assert json.loads(error_frame(404, "unknown_role", "no")) == {
        "type": "error", "status": 404, "error": {"code": "unknown_role", "message": "no"}
    }


def test_origins_no_origin_and_the_same_host_pass_others_only_when_listed() -> None:
    listed = parse_origins(" https://chat.example.com/ , http://localhost:3000")
    assert origin_allowed(None, "svc:8080", frozenset())
    assert origin_allowed("http://svc:8080", "svc:8080", frozenset())
    assert not origin_allowed("http://svc:9090", "svc:8080", frozenset())
    assert not origin_allowed("https://evil.example.net", "svc:8080", listed)
    assert origin_allowed("https://Chat.Example.com", "svc:8080", listed)
    assert origin_allowed("null", "svc:8080", parse_origins("*"))
    assert not origin_allowed("null", "svc:8080", frozenset())


def test_the_key_of_an_upgrade_comes_from_a_header_the_query_or_a_subprotocol() -> None:
    def scope(headers: list[tuple[bytes, bytes]], query: bytes = b"") -> dict[str, object]:
        return {"type": "websocket", "headers": headers, "query_string": query}

    header = [(b"authorization", b"Bearer k-header")]
    assert presented_websocket_key(scope(header, b"api_key=k-q")) == "k-header"
    assert presented_websocket_key(scope([], b"role=x&api_key=k-query")) == "k-query"
    protocols = [(b"sec-websocket-protocol", b"rolescope.v1, rolescope.key.k-sub")]
    assert presented_websocket_key(scope(protocols)) == "k-sub"
    assert presented_websocket_key(scope([(b"sec-websocket-protocol", b"rolescope.v1")])) is None


def test_the_send_queue_refuses_frames_beyond_its_bound_and_keeps_order() -> None:
    async def scenario() -> tuple[list[str], bool, int]:
        sent: list[str] = []
        release = asyncio.Event()

        async def slow_send(frame: str) -> None:
            await release.wait()  # a client that does not read
            sent.append(frame)

        queue = SendQueue(slow_send, max_chars=10)
        writer = asyncio.create_task(queue.run())
        accepted = [queue.put(f"f{i:03d}") for i in range(5)]  # 4 characters each
        assert accepted == [True, True, False, False, False] and queue.overflowed.is_set()
        waiting = queue.waiting_chars
        release.set()
        await asyncio.wait_for(queue.drained(), timeout=5)
        writer.cancel()
        return sent, queue.put("late"), waiting

    sent, late, waiting = asyncio.run(scenario())
    assert sent == ["f000", "f001"] and not late and waiting == 8


def test_one_frame_larger_than_the_bound_still_passes_an_empty_queue() -> None:
    async def scenario() -> bool:
        queue = SendQueue(lambda frame: asyncio.sleep(0), max_chars=4)
        return queue.put("x" * 100)

    assert asyncio.run(scenario())


def test_wait_closed_returns_once_the_last_connection_closes() -> None:
    async def scenario() -> None:
        hub = OpenWebSockets()
        await asyncio.wait_for(hub.wait_closed(), 1)  # none open: at once
        hub.opened()
        hub.opened()
        waiter = asyncio.create_task(hub.wait_closed())
        hub.closed()
        await asyncio.sleep(0.01)
        assert not waiter.done()
        hub.closed()
        await asyncio.wait_for(waiter, 1)

    asyncio.run(scenario())


def test_a_drain_listener_is_called_on_its_loop_and_at_once_when_already_draining() -> None:
    async def scenario() -> list[str]:
        signal = DrainSignal()
        calls: list[str] = []
        unsubscribe = signal.subscribe(lambda: calls.append("first"))
        signal.begin()
        await asyncio.sleep(0.01)
        late = signal.subscribe(lambda: calls.append("late"))
        await asyncio.sleep(0.01)
        unsubscribe()
        late()
        return calls

    assert asyncio.run(scenario()) == ["first", "late"]


def test_chat_reply_as_dict_is_the_dataclass_fields_nested() -> None:
    import dataclasses

    from rolescope.inference.base import Usage
    from rolescope.service.chat import ChatReply

    reply = ChatReply("sherlock", "Elementary.", "2026-01-01T00:00:00.000Z", 0.8, "s1", "t" * 32, Usage(7, 3))
    assert reply.as_dict() == dataclasses.asdict(reply)
    assert list(reply.as_dict()) == [f.name for f in dataclasses.fields(ChatReply)]
