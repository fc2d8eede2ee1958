"""The stream readers as pure functions: lines in with injected arrival times, a Reply out."""

from __future__ import annotations

import json
from typing import Any

from rolescope.loadtests.targets.base import TargetOptions, TurnCall
from rolescope.loadtests.targets.openai import OpenAIAdapter, OpenAIStreamReader
from rolescope.loadtests.targets.rolescope import RolescopeStreamReader
from rolescope.loadtests.targets.template import TemplateStreamReader
from rolescope.loadtests.targets.template_spec import StreamReplySpec


def _feed(reader: Any, events: list[tuple[float, str]], *, event_names: dict[int, str] | None = None) -> Any:
    for index, (now, data) in enumerate(events):
        if event_names and index in event_names:
            reader.feed(f"event: {event_names[index]}\n".encode(), now)
        reader.feed(f"data: {data}\r\n".encode(), now)
        reader.feed(b"\r\n", now)
    return reader.close(events[-1][0] + 0.001 if events else 0.0)


def _chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def test_openai_first_token_is_the_first_non_empty_content_delta() -> None:
    reply = _feed(
        OpenAIStreamReader(),
        [
            (1.0, _chunk({"role": "assistant", "content": ""})),
            (1.1, _chunk({"reasoning_content": "hmm"})),
            (1.2, _chunk({"content": None, "reasoning": "still"})),
            (1.5, _chunk({"content": "Hello"})),
            (1.6, _chunk({"content": " there"})),
            (1.7, _chunk({}, "stop")),
            (1.7, json.dumps({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 5}})),
            (1.7, "[DONE]"),
        ],
    )
    assert reply.error is None and reply.first_token_at == 1.5
    assert reply.output_tokens == 5 and reply.input_tokens == 9  # usage wins over the 2 deltas counted
    assert reply.text == "Hello there"


def test_openai_counts_deltas_when_the_server_sends_no_usage() -> None:
    reply = _feed(
        OpenAIStreamReader(),
        [(1.0, _chunk({"content": "a"})), (1.1, _chunk({"content": "b"}, "length")), (1.2, "[DONE]")],
    )
    assert reply.error is None and reply.output_tokens == 2
    assert [round(gap, 6) for gap in reply.inter_token_latencies()] == [0.1]


def test_openai_error_chunk_and_cut_streams_are_failures() -> None:
    error = _feed(
        OpenAIStreamReader(),
        [
            (1.0, _chunk({"content": "a"})),
            (1.1, json.dumps({"error": {"message": "overloaded"}})),
            (1.2, "[DONE]"),
        ],
    )
    assert error.error == "error chunk: overloaded"
    no_done = _feed(OpenAIStreamReader(), [(1.0, _chunk({"content": "a"})), (1.1, _chunk({}, "stop"))])
    assert no_done.error is not None and "[DONE]" in no_done.error
    no_finish = _feed(OpenAIStreamReader(), [(1.0, _chunk({"content": "a"})), (1.1, "[DONE]")])
    assert no_finish.error is not None and "finish_reason" in no_finish.error
    nothing = _feed(OpenAIStreamReader(), [(1.0, _chunk({"role": "assistant"}, "stop")), (1.1, "[DONE]")])
    assert nothing.error == "stream ended without a content token"


def test_openai_request_carries_persona_history_and_passthrough_fields() -> None:
    from rolescope.loadtests.targets.base import Exchange

    adapter = OpenAIAdapter(TargetOptions(api="openai", max_tokens=32, headers={"X-A": "1"}), "k")
    call = TurnCall("now?", "sherlock", "s1", True, (Exchange("then?", "later"),), "You are Holmes.")
    request = adapter.request(call)
    body = json.loads(request.body or b"")
    assert body["model"] == "sherlock" and body["max_tokens"] == 32 and "ignore_eos" not in body
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert request.headers["Authorization"] == "Bearer k" and request.headers["X-A"] == "1"
    assert request.stream and request.name == "stream"


def test_rolescope_stream_without_its_done_event_is_cut_off() -> None:
    tokens = [(1.0 + i / 10, json.dumps({"text": f"t{i}", "index": i})) for i in range(3)]
    names = dict.fromkeys(range(4), "token")
    cut = _feed(RolescopeStreamReader(), tokens, event_names=names)
    assert cut.error is not None and "truncated" in cut.error and len(cut.token_times) == 3
    done = json.dumps(
        {"role": "sherlock", "content": "t0t1t2", "usage": {"input_tokens": 1, "output_tokens": 3}}
    )
    whole = _feed(RolescopeStreamReader(), [*tokens, (1.4, done)], event_names={**names, 3: "done"})
    assert whole.error is None and whole.output_tokens == 3 and whole.text == "t0t1t2"


def test_template_reader_follows_its_paths_events_and_end_marker() -> None:
    spec = StreamReplySpec.model_validate(
        {
            "text": "choices.0.delta.content",
            "output_tokens": "usage.completion_tokens",
            "end": {"data": "[DONE]"},
            "error": {"field": "error.message"},
        }
    )
    reply = _feed(
        TemplateStreamReader(spec),
        [
            (1.0, _chunk({"content": ""})),
            (1.2, _chunk({"content": "x"})),
            (1.3, json.dumps({"usage": {"completion_tokens": 4}})),
            (1.4, "[DONE]"),
        ],
    )
    assert reply.error is None and reply.first_token_at == 1.2 and reply.output_tokens == 4
    failed = _feed(
        TemplateStreamReader(spec), [(1.0, json.dumps({"error": {"message": "no"}})), (1.1, "[DONE]")]
    )
    assert failed.error == "error event: no"
    cut = _feed(TemplateStreamReader(spec), [(1.0, _chunk({"content": "x"}))])
    assert cut.error is not None and "end marker" in cut.error
