"""What each protocol reads from requests and replies, as pure functions over bytes."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rolescope.capture.protocols.base import DecodingReader, HttpRequestView, SseEvents
from rolescope.capture.protocols.openai_api import OpenAIProtocol, conversation_id
from rolescope.capture.protocols.rolescope_api import RolescopeProtocol
from rolescope.capture.protocols.template_api import load_template
from rolescope.capture.proxy_http import request_headers, response_headers
from rolescope.capture.proxy_server import parse_listen, parse_upstream
from rolescope.errors import ConfigError

ROLESCOPE_STREAM = (
    b'event: token\r\ndata: {"text": "Most", "index": 0}\r\n\r\n'
    b'event: token\r\ndata: {"text": " singular", "index": 1}\r\n\r\n'
    b": ping\r\n\r\n"
    b'event: done\r\ndata: {"role": "sherlock", "content": "Most singular", "session_id": "abcdefgh12", '
    b'"usage": {"input_tokens": 5, "output_tokens": 7}}\r\n\r\n'
)


def _view(method: str, path: str, body: object = None, **headers: str) -> HttpRequestView:
    raw = json.dumps(body).encode() if body is not None else b""
    return HttpRequestView(method, path, {}, headers, raw)


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@given(st.lists(st.integers(min_value=0, max_value=len(ROLESCOPE_STREAM)), max_size=30))
def test_a_rolescope_stream_reads_the_same_however_it_is_cut(cuts: list[int]) -> None:
    reader = RolescopeProtocol().reply_reader(event_stream=True)
    for piece in _pieces(ROLESCOPE_STREAM, cuts):
        reader.feed(piece)
    facts = reader.finish()
    assert (facts.output_tokens, facts.session_id, facts.role) == (7, "abcdefgh12", "sherlock")


def test_a_rolescope_stream_without_usage_counts_its_token_events() -> None:
    reader = RolescopeProtocol().reply_reader(event_stream=True)
    reader.feed(ROLESCOPE_STREAM.split(b"event: done")[0])
    assert reader.finish().output_tokens == 2


def test_rolescope_requests_are_read_from_the_body_or_the_query() -> None:
    protocol = RolescopeProtocol()
    posted = protocol.read_request(_view("POST", "/v1/chat", {"message": "hi", "session_id": "s-12345678"}))
    assert posted is not None and posted.session_id == "s-12345678" and not posted.stream
    asked = protocol.read_request(_view("POST", "/v1/chat", {"message": "hi"}, accept="text/event-stream"))
    assert asked is not None and asked.stream and asked.session_id is None
    query = HttpRequestView("GET", "/v1/chat", {"message": "yo", "role": "curie"}, {"x-client-id": "c1"}, b"")
    got = protocol.read_request(query)
    assert got is not None and (got.message, got.role, got.client_id, got.stream) == (
        "yo",
        "curie",
        "c1",
        True,
    )
    assert protocol.read_request(_view("POST", "/v1/chat", {"text": "no message field"})) is None
    assert protocol.read_request(HttpRequestView("POST", "/v1/chat", {}, {}, b"not json")) is None
    assert not protocol.handles("POST", "/v1/roles")


def _openai_chunk(delta: dict[str, object], usage: dict[str, int] | None = None) -> bytes:
    document: dict[str, object] = {"choices": [{"index": 0, "delta": delta}] if delta else []}
    if usage:
        document["usage"] = usage
    return b"data: " + json.dumps(document).encode() + b"\n\n"


def test_openai_output_tokens_come_from_usage_else_from_deltas_with_content() -> None:
    chunks = [
        _openai_chunk({"role": "assistant", "content": ""}),
        _openai_chunk({"reasoning_content": "hmm"}),
        _openai_chunk({"content": "Hello"}),
        _openai_chunk({"content": " there"}),
    ]
    counted = OpenAIProtocol().reply_reader(event_stream=True)
    for chunk in [*chunks, b"data: [DONE]\n\n"]:
        counted.feed(chunk)
    assert counted.finish().output_tokens == 2
    with_usage = OpenAIProtocol().reply_reader(event_stream=True)
    for chunk in [*chunks, _openai_chunk({}, {"completion_tokens": 11}), b"data: [DONE]\n\n"]:
        with_usage.feed(chunk)
    assert with_usage.finish().output_tokens == 11
    plain = OpenAIProtocol().reply_reader(event_stream=False)
    plain.feed(json.dumps({"choices": [{"message": {"content": "three small words"}}]}).encode())
    assert plain.finish().output_tokens == 3


def test_an_openai_conversation_keeps_one_session_across_its_turns() -> None:
    protocol = OpenAIProtocol()
    first = {
        "model": "m",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "A"}],
    }
    later = {
        "model": "m",
        "max_completion_tokens": 12,
        "messages": [
            *first["messages"],  # type: ignore[list-item]
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "B"}]},
        ],
    }
    one, two = (
        protocol.read_request(_view("POST", "/v1/chat/completions", first)),
        protocol.read_request(_view("POST", "/v1/chat/completions", later)),
    )
    assert one is not None and two is not None
    assert one.session_id == two.session_id == conversation_id("m", "", "A")
    assert (two.message, two.role, two.max_tokens) == ("B", "m", 12)
    headed = protocol.read_request(_view("POST", "/v1/chat/completions", first, **{"x-session-id": "mine"}))
    assert headed is not None and headed.session_id == "mine"
    ends_with_assistant = {"model": "m", "messages": [{"role": "assistant", "content": "x"}]}
    assert protocol.read_request(_view("POST", "/v1/chat/completions", ends_with_assistant)) is None


def test_a_template_is_read_backwards_from_its_placeholders(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "name: shop\nrequest:\n  method: POST\n  path: /bots/{role}/talk?conv={session_id}\n"
        '  body: {input: {text: "{message}"}, streaming: "{stream}"}\n  headers: {x-k: v}\n'
        "reply:\n  json: {text: answer.text, output_tokens: meta.tokens}\n"
        "  stream: {text: delta, events: [chunk], end: {event: end}}\n"
    )
    protocol = load_template(path)
    assert protocol.handles("POST", "/bots/ada/talk") and not protocol.handles("GET", "/bots/ada/talk")
    view = HttpRequestView(
        "POST", "/bots/ada/talk", {"conv": "c-1"}, {}, b'{"input": {"text": "hi"}, "streaming": true}'
    )
    facts = protocol.read_request(view)
    assert facts is not None and (facts.message, facts.role, facts.session_id, facts.stream) == (
        "hi",
        "ada",
        "c-1",
        True,
    )
    streamed = protocol.reply_reader(event_stream=True)
    streamed.feed(b'event: chunk\ndata: {"delta": "a"}\n\nevent: other\ndata: {"delta": "b"}\n\n')
    streamed.feed(b'event: chunk\ndata: {"delta": ""}\n\nevent: end\ndata: {}\n\n')
    assert streamed.finish().output_tokens == 1
    answered = protocol.reply_reader(event_stream=False)
    answered.feed(b'{"answer": {"text": "x y"}, "meta": {"tokens": 9}}')
    assert answered.finish().output_tokens == 9


def test_a_template_that_never_places_the_message_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: x\nrequest: {path: /chat, body: {text: 'say {message} please'}}\nreply: {json: {text: a}}\n"
    )
    with pytest.raises(ConfigError, match=r"bad\.yaml.*request\.body.*\{message\}"):
        load_template(path)
    path.write_text("name: x\nrequest: {path: chat}\nreply: 3\n")
    with pytest.raises(ConfigError) as problem:
        load_template(path)
    assert "request.path" in str(problem.value) and "reply" in str(problem.value)


def test_a_gzipped_reply_is_read_from_a_decoded_copy() -> None:
    reader = DecodingReader(RolescopeProtocol().reply_reader(event_stream=False), "gzip")
    packed = gzip.compress(json.dumps({"session_id": "abcdefgh12", "usage": {"output_tokens": 4}}).encode())
    for index in range(0, len(packed), 7):
        reader.feed(packed[index : index + 7])
    assert reader.finish().output_tokens == 4


def test_sse_events_join_data_lines_and_keep_names() -> None:
    events = SseEvents()
    found = events.feed(b"event: a\ndata: 1\ndata: 2\n\nid: 3\ndata: x")
    assert found == [(b"a", b"1\n2")]
    assert events.close() == [(b"message", b"x")]


def test_hop_by_hop_headers_stay_behind_and_forwarding_headers_are_added() -> None:
    sent = [
        (b"Host", b"proxy:8081"),
        (b"Connection", b"keep-alive, X-Secret-Hop"),
        (b"X-Secret-Hop", b"1"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Authorization", b"Bearer k"),
        (b"X-Forwarded-For", b"10.0.0.1"),
        (b"Content-Length", b"5"),
    ]
    forwarded = dict(request_headers(sent, "127.0.0.1"))
    assert forwarded == {
        b"Authorization": b"Bearer k",
        b"Content-Length": b"5",
        b"x-forwarded-for": b"10.0.0.1, 127.0.0.1",
        b"x-forwarded-host": b"proxy:8081",
    }
    back = response_headers([(b"Content-Type", b"text/event-stream"), (b"Keep-Alive", b"timeout=5")])
    assert back == [(b"content-type", b"text/event-stream")]


def test_listen_and_upstream_mistakes_are_named() -> None:
    assert parse_listen(":8081") == ("127.0.0.1", 8081)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for wrong in ("8081", "host:port", "h:70000"):
        with pytest.raises(ConfigError, match="--listen"):
            parse_listen(wrong)
    with pytest.raises(ConfigError, match="--upstream 'ftp://x'"):
        parse_upstream("ftp://x")
