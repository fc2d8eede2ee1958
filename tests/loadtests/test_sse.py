"""Reading a chat event stream: first token, inter-token gaps, final usage, error events."""

from __future__ import annotations

import json

from rolescope.loadtests.sse import StreamParser


def _event(parser: StreamParser, name: str, data: object, at: float) -> None:
    parser.feed(f"event: {name}\r\n".encode(), at)
    parser.feed(f"data: {json.dumps(data)}\r\n".encode(), at)
    parser.feed(b"\r\n", at)


def test_timings_of_a_normal_stream() -> None:
    parser = StreamParser()
    _event(parser, "token", {"text": "", "index": 0}, 1.0)  # empty chunks are not the first token
    _event(parser, "token", {"text": "Hello", "index": 1}, 1.2)
    _event(parser, "token", {"text": " there", "index": 2}, 1.25)
    parser.feed(b": ping\r\n\r\n", 1.26)
    _event(parser, "token", {"text": ".", "index": 3}, 1.35)
    _event(
        parser, "done", {"role": "sherlock", "content": "Hello there.", "usage": {"output_tokens": 3}}, 1.4
    )
    reading = parser.close(1.4)
    assert reading.first_token_at == 1.2
    assert [round(x, 3) for x in reading.inter_token_latencies()] == [0.05, 0.1]
    assert reading.output_tokens() == 3
    assert reading.error is None and reading.final is not None
    assert not reading.arrived_all_at_once()


def test_error_event_is_recorded() -> None:
    parser = StreamParser()
    _event(parser, "token", {"text": "Hm", "index": 0}, 1.0)
    _event(parser, "error", {"error": {"code": "inference_failed", "message": "backend broke"}}, 1.1)
    assert parser.close(1.1).error == "backend broke"


def test_a_stream_delivered_in_one_burst_is_noticed() -> None:
    parser = StreamParser()
    for index in range(5):
        _event(parser, "token", {"text": f"t{index}", "index": index}, 2.0)
    assert parser.close(2.0).arrived_all_at_once()


def test_openai_style_chunks_and_done_marker() -> None:
    parser = StreamParser()
    parser.feed(b'data: {"choices": [{"delta": {"content": "Hi"}}]}\n', 1.0)
    parser.feed(b"\n", 1.0)
    parser.feed(b"data: [DONE]\n\n", 1.1)
    reading = parser.close(1.1)
    assert reading.first_token_at == 1.0 and reading.final == {}
