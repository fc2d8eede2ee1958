"""The WebSocket chat client: turn timings as pure folds of frames, and real turns against the service."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rolescope.loadtests.ws_client import TurnTiming, WsChatClient, read_turn
from tests.conftest import ServiceFactory

KEY = "k" * 24


def token(text: str) -> str:
    return json.dumps({"type": "token", "text": text, "index": 0})


def test_a_turn_is_timed_from_the_send_to_the_first_token_between_tokens_and_to_the_final() -> None:
    final = json.dumps({"type": "final", "response": {"session_id": "s1", "usage": {"output_tokens": 3}}})
    frames = [(10.2, token("A")), (10.25, token(" b")), (10.35, token("c")), (10.4, final)]
    timing = read_turn(frames, sent_at=10.0)
    assert timing.ok and timing.status == 200 and timing.session_id == "s1"
    assert timing.ttft_s == pytest.approx(0.2) and timing.e2e_s == pytest.approx(0.4)
    assert timing.itl_s == pytest.approx([0.05, 0.1])
    assert timing.output_tokens == 3 and timing.tpot_s == pytest.approx(0.1)


def test_an_error_frame_ends_the_turn_with_its_status_and_code() -> None:
    error = json.dumps(
        {"type": "error", "status": 504, "error": {"code": "inference_timeout", "message": "slow"}}
    )
    timing = read_turn([(1.1, token("x")), (1.5, error)], sent_at=1.0)
    assert not timing.ok and timing.status == 504 and timing.error == "inference_timeout: slow"
    assert timing.ttft_s == pytest.approx(0.1)


def test_frames_that_stop_before_a_terminal_frame_are_a_failure_with_status_0() -> None:
    timing = read_turn([(2.3, token("x"))], sent_at=2.0)
    assert timing == TurnTiming(False, 0, pytest.approx(0.3), pytest.approx(0.3), [], error=timing.error)
    assert timing.error and "ended" in timing.error
    assert read_turn([(2.1, "not json")], sent_at=2.0).error == "not a JSON frame: 'not json'"


def test_a_conversation_replays_a_session_on_one_connection(
    service_factory: ServiceFactory, fast_roles_path: Path
) -> None:
    service = service_factory(roles_path=fast_roles_path, env={"ROLESCOPE_API_KEYS": KEY})
    url = service.url.replace("http://", "ws://") + "/role/sherlock"
    with WsChatClient(url, api_key=KEY, key_in_query=True) as client:
        timings = client.conversation(["Who was it?", "Why?", "Are you sure?"])
        refused = client.turn("Hello", role="nobody")
    assert [t.ok for t in timings] == [True, True, True]
    assert len({t.session_id for t in timings}) == 1
    for timing in timings:
        assert timing.ttft_s is not None and 0 < timing.ttft_s < timing.e2e_s
        assert timing.output_tokens > 1 and len(timing.itl_s) >= 1 and timing.tpot_s is not None
        assert timing.response is not None and timing.response["role"] == "sherlock"
    assert (refused.ok, refused.status) == (False, 404) and (refused.error or "").startswith("unknown_role")
    sample = timings[0].as_sample("ws", intended_start=1.0, start=1.0, session="s", turn=0)
    assert sample.streamed and sample.ttft_s == timings[0].ttft_s and sample.itl_s == timings[0].itl_s
    with WsChatClient(url, api_key=KEY) as by_header:
        assert by_header.turn("Hello").ok


def test_a_connection_closed_by_the_server_says_its_close_code(
    service_factory: ServiceFactory, fast_roles_path: Path
) -> None:
    service = service_factory(roles_path=fast_roles_path, env={"ROLESCOPE_MAX_BODY_BYTES": "1024"})
    with WsChatClient(service.url.replace("http://", "ws://") + "/v1/ws") as client:
        timing = client.turn("x" * 5000)
    assert not timing.ok and timing.status == 0 and (timing.error or "").startswith("closed 1009")
