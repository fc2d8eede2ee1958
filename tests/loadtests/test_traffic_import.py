"""`rolescope traffic import`: OpenAI messages, ShareGPT and OTLP GenAI spans become redacted traffic."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToJson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from rolescope.loadtests.importers import IMPORTERS
from rolescope.loadtests.traffic_format import TrafficRecord, group_sessions, read_traffic

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
CANARIES = ("jane.doe@example.org", AWS_SECRET, "+44 20 7946 0958", "conv-secret-id-1")
KEY_ENV = {"ROLESCOPE_CAPTURE_KEY": "an-import-test-key-of-32-bytes!!"}


def _import(source: Path, fmt: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", **KEY_ENV}
    command = [sys.executable, "-m", "rolescope.cli", "traffic", "import", "--from", fmt, str(source)]
    return subprocess.run(
        [*command, "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _assert_clean(out: Path) -> list[TrafficRecord]:
    text = out.read_text(encoding="utf-8")
    for canary in CANARIES:
        assert canary not in text
    return read_traffic(out)


def test_openai_jsonl_turns_sessions_and_synthetic_arrivals(tmp_path: Path) -> None:
    source = tmp_path / "chats.jsonl"
    lines = [
        {
            "id": "conv-secret-id-1",
            "max_tokens": 64,
            "stream": False,
            "messages": [
                {"role": "system", "content": "You are Sherlock Holmes."},
                {"role": "user", "content": "Write to jane.doe@example.org about the case."},
                {"role": "assistant", "content": "x" * 400},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": f"aws_secret_access_key={AWS_SECRET}"}],
                },
                {"role": "assistant", "content": "Noted."},
                {"role": "user", "content": "And mail jane.doe@example.org again."},
            ],
        },
        {"custom_id": "b-2", "body": {"messages": [{"role": "user", "content": "Call +44 20 7946 0958"}]}},
    ]
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    out = tmp_path / "traffic.jsonl"
    result = _import(source, "openai-jsonl", out, "--rate", "2", "--think-time", "3", "--role", "curie")
    assert result.returncode == 0, result.stderr
    records = _assert_clean(out)
    sessions = list(group_sessions(records).values())
    assert sorted(len(turns) for turns in sessions) == [1, 3]
    long_session = next(turns for turns in sessions if len(turns) == 3)
    assert [r.message for r in long_session] == [
        "Write to <EMAIL_1> about the case.",
        "aws_secret_access_key=<SECRET_1>",
        "And mail <EMAIL_1> again.",
    ]
    assert all(r.role == "curie" and r.max_tokens == 64 and not r.stream for r in long_session)
    assert long_session[0].original.output_tokens == 100
    gaps = [b.arrival - a.arrival for a, b in itertools.pairwise(long_session)]
    assert gaps == pytest.approx([3.0, 3.0])
    assert long_session[0].session.startswith("s_")
    short = next(turns for turns in sessions if len(turns) == 1)[0]
    assert short.message == "Call <PHONE_1>" and short.stream and short.max_tokens is None


def test_same_key_and_seed_give_the_same_file(tmp_path: Path) -> None:
    source = tmp_path / "c.jsonl"
    source.write_text('{"id": "a", "messages": [{"role": "user", "content": "hello"}]}\n', encoding="utf-8")
    one, two = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    assert _import(source, "openai-jsonl", one).returncode == 0
    assert _import(source, "openai-jsonl", two).returncode == 0
    assert one.read_bytes() == two.read_bytes()


def test_bad_lines_are_all_named_and_nothing_is_written(tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text(
        "\n".join(
            [
                '{"messages": [{"role": "user", "content": "fine"}]}',
                "not json",
                '{"messages": [{"role": "wizard", "content": "x"}, {"role": "user"}], "max_tokens": 0}',
                "[1, 2]",
                '{"message": "typo"}',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    result = _import(source, "openai-jsonl", out)
    assert result.returncode == 2
    said = result.stderr
    for fragment in (
        "line 2: not valid JSON",
        "line 3: field 'max_tokens'",
        "line 3: field 'messages[0].role'",
        "line 3: field 'messages[1].content'",
        "line 4: expected a JSON object",
        "line 5: field 'messages'",
    ):
        assert fragment in said
    assert "line 1" not in said and "Traceback" not in said
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.jsonl"]


def test_sharegpt_array_and_jsonl(tmp_path: Path) -> None:
    conversations = [
        {
            "id": "conv-secret-id-1",
            "conversations": [
                {"from": "system", "value": "You are helpful."},
                {"from": "human", "value": "My e-mail is jane.doe@example.org"},
                {"from": "gpt", "value": "y" * 80},
                {"from": "human", "value": "Thanks!"},
            ],
        },
        {"id": "b", "conversations": [{"from": "human", "value": "Ring +44 20 7946 0958"}]},
    ]
    array = tmp_path / "sharegpt.json"
    array.write_text(json.dumps(conversations, indent=2), encoding="utf-8")
    jsonl = tmp_path / "sharegpt.jsonl"
    jsonl.write_text("\n".join(json.dumps(c) for c in conversations) + "\n", encoding="utf-8")
    outputs = []
    for source in (array, jsonl):
        out = source.with_suffix(".out")
        result = _import(source, "sharegpt", out)
        assert result.returncode == 0, result.stderr
        outputs.append(out.read_bytes())
        records = _assert_clean(out)
        messages = sorted(r.message for r in records)
        assert messages == ["My e-mail is <EMAIL_1>", "Ring <PHONE_1>", "Thanks!"]
        first = next(r for r in records if r.message.startswith("My"))
        assert first.original.output_tokens == 20 and first.turn == 0
    assert outputs[0] == outputs[1]


def test_sharegpt_problems_name_the_line_where_each_conversation_starts(tmp_path: Path) -> None:
    source = tmp_path / "bad.json"
    source.write_text(
        '[\n  {"id": "a", "conversations": [{"from": "human", "value": "ok"}]},\n'
        '  {"id": "b", "conversations": [{"from": "alien", "value": "x"}]},\n'
        '  {"id": "c", "conversations": [{"from": "human", "value": 5}]},\n'
        '  {"id": "d"}\n]\n',
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    result = _import(source, "sharegpt", out)
    assert result.returncode == 2
    assert "line 3 (conversation [1]): field 'conversations[0].from'" in result.stderr
    assert "line 4 (conversation [2]): field 'conversations[0].value'" in result.stderr
    assert "line 5 (conversation [3]): field 'conversations'" in result.stderr
    assert not out.exists()


def _otlp_json(tmp_path: Path) -> Path:
    """Spans made and encoded by the OpenTelemetry SDK itself, written as the file exporter does."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("import-test")
    base = 1_780_000_000 * 10**9
    first_messages = [
        {"role": "system", "parts": [{"type": "text", "content": "You are Curie."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Mail jane.doe@example.org"}]},
    ]
    span = tracer.start_span(
        "chat m",
        start_time=base,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.conversation.id": "conv-secret-id-1",
            "gen_ai.agent.name": "curie",
            "gen_ai.usage.output_tokens": 42,
            "gen_ai.request.max_tokens": 100,
            "gen_ai.input.messages": json.dumps(first_messages),
        },
    )
    span.end(end_time=base + 1_500_000_000)
    span = tracer.start_span(
        "chat m",
        start_time=base + 9 * 10**9,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.conversation.id": "conv-secret-id-1",
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": f"aws_secret_access_key={AWS_SECRET}",
        },
    )
    span.set_status(Status(StatusCode.ERROR))
    span.end(end_time=base + 10 * 10**9)
    span = tracer.start_span(
        "chat m", start_time=base + 4 * 10**9, attributes={"gen_ai.operation.name": "chat"}
    )
    span.add_event("gen_ai.user.message", {"content": "Phone +44 20 7946 0958"})
    span.end(end_time=base + 5 * 10**9)
    tracer.start_span("GET /health", start_time=base).end(end_time=base + 1000)
    tracer.start_span("embeddings", attributes={"gen_ai.operation.name": "embeddings"}).end()
    spans = exporter.get_finished_spans()
    path = tmp_path / "traces.jsonl"
    lines = [
        MessageToJson(encode_spans(spans[:2]), indent=None),
        MessageToJson(encode_spans(spans[2:]), indent=None),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_otel_genai_spans_keep_their_times_sessions_and_outcomes(tmp_path: Path) -> None:
    source = _otlp_json(tmp_path)
    out = tmp_path / "traffic.jsonl"
    result = _import(source, "otel-genai", out, "--role", "sherlock")
    assert result.returncode == 0, result.stderr
    records = _assert_clean(out)
    assert len(records) == 3
    by_message = {r.message: r for r in records}
    first = by_message["Mail <EMAIL_1>"]
    second = by_message["aws_secret_access_key=<SECRET_1>"]
    other = by_message["Phone <PHONE_1>"]
    assert first.arrival == pytest.approx(1_780_000_000.0)
    assert second.arrival == pytest.approx(1_780_000_009.0)
    assert other.arrival == pytest.approx(1_780_000_004.0)
    assert first.session == second.session != other.session
    assert (first.turn, second.turn) == (0, 1)
    assert first.role == "curie" and other.role == "sherlock"
    assert first.original.latency_s == pytest.approx(1.5)
    assert first.original.output_tokens == 42 and first.max_tokens == 100
    assert first.original.status == 200 and second.original.status == 500


def test_otel_chat_span_without_content_is_a_problem(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("t").start_span("chat m", attributes={"gen_ai.operation.name": "chat"}).end()
    source = tmp_path / "t.json"
    source.write_text(MessageToJson(encode_spans(exporter.get_finished_spans())), encoding="utf-8")
    source.write_text(source.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    result = _import(source, "otel-genai", out)
    assert result.returncode == 2
    assert "resourceSpans[0].scopeSpans[0].spans[0]" in result.stderr
    assert "content capture" in result.stderr
    assert not out.exists()


def test_every_registered_importer_has_a_name_summary_and_timing() -> None:
    assert set(IMPORTERS) == {"openai-jsonl", "sharegpt", "otel-genai"}
    assert [IMPORTERS[n].timed for n in ("openai-jsonl", "sharegpt", "otel-genai")] == [False, False, True]


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    result = _import(tmp_path / "x", "csv", tmp_path / "o")
    assert result.returncode == 2 and "openai-jsonl, sharegpt, otel-genai" in result.stderr
    result = _import(tmp_path / "missing.json", "sharegpt", tmp_path / "o")
    assert result.returncode == 2 and "cannot read" in result.stderr
