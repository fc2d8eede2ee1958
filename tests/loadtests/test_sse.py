"""Reading a chat event stream: first token, inter-token gaps, final usage, error events."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

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


# How a server may lay out the same token event: compact, spaced, indented, keys in another order.
LAYOUTS = (
    {"separators": (",", ":")},
    {"separators": (", ", ": ")},
    {"indent": 2},
    {"separators": (" ,", " :  ")},
)
tokens = st.lists(
    st.tuples(st.text(max_size=6), st.sampled_from(range(len(LAYOUTS))), st.booleans()), max_size=12
)


@given(tokens, st.sampled_from([b"\n", b"\r\n", b"\r"]), st.integers(min_value=1, max_value=64))
def test_token_times_do_not_depend_on_json_layout_or_chunking(
    events: list[tuple[str, int, bool]], ending: bytes, chunk_size: int
) -> None:
    stream = bytearray()
    wanted: list[float] = []
    for index, (text, layout, text_first) in enumerate(events):
        body = {"text": text, "index": index} if text_first else {"index": index, "text": text}
        data = json.dumps(body, **LAYOUTS[layout])  # type: ignore[arg-type]
        lines = [b"event: token", *(b"data: " + part.encode() for part in data.split("\n")), b""]
        stream += ending.join(lines) + ending
        # The event is complete once its empty line's CR or LF arrives (an LF after CR adds nothing).
        if text:
            wanted.append(float(len(stream) - (1 if ending == b"\r\n" else 0)))
    parser = StreamParser()
    for start in range(0, len(stream), chunk_size):
        end = min(start + chunk_size, len(stream))
        parser.feed(bytes(stream[start:end]), float(end))
    reading = parser.close(float(len(stream)))
    # Each token is timed by the chunk that completed it, never earlier.
    assert len(reading.token_times) == len(wanted)
    assert all(w <= t < w + chunk_size for w, t in zip(wanted, reading.token_times, strict=True))
    assert reading.events == len(events) and reading.error is None


def test_an_event_cut_off_by_the_end_of_the_stream_is_not_a_token() -> None:
    parser = StreamParser()
    _event(parser, "token", {"text": "Hi", "index": 0}, 1.0)
    parser.feed(b'event: token\ndata: {"text": "cut"}\n', 1.1)  # no empty line: never dispatched
    assert parser.close(1.2).token_times == [1.0]
