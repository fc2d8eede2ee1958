"""Template files: every problem named with the file and the field; placeholders filled by value."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rolescope.errors import ConfigError
from rolescope.loadtests.targets.base import Exchange, TargetOptions, TurnCall
from rolescope.loadtests.targets.template import TemplateAdapter
from rolescope.loadtests.targets.template_spec import TemplateSpec, load_template, lookup, parse_field_path


def test_field_paths_read_dotted_and_jsonpath_forms_alike() -> None:
    assert parse_field_path("choices.0.delta.content") == ("choices", 0, "delta", "content")
    assert parse_field_path("$.choices[0].delta.content") == ("choices", 0, "delta", "content")
    document = {"choices": [{"delta": {"content": "hi"}}]}
    assert lookup(document, ("choices", 0, "delta", "content")) == "hi"
    assert lookup(document, ("choices", 3, "delta")) is None and lookup("text", ("a",)) is None
    with pytest.raises(ValueError, match="dotted field path"):
        parse_field_path("choices..content")


def test_shipped_templates_are_valid() -> None:
    folder = Path(str(resources.files("rolescope.loadtests.templates")))
    names = sorted(p.name for p in folder.glob("*.yaml"))
    assert names == ["rolescope.yaml", "seed-chat.yaml"]
    for name in names:
        load_template(folder / name)


def test_every_problem_of_a_template_is_named_with_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: broken\n"
        "request: {method: DELETE, path: chat, body: {q: '{mesage}'}}\n"
        "reply: {stream: {text: 'a..b', end: {}}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_template(bad)
    text = str(caught.value)
    assert text.startswith(f"{bad}: template is invalid:")
    for expected in (
        "field `request.body.q`: unknown placeholder {mesage}",
        "field `request.method`",
        "field `request.path`",
        "field `reply.stream.text`",
        "field `reply.stream.end`: expected at least one of event, data, field",
    ):
        assert expected in text
    empty = tmp_path / "empty.yaml"
    empty.write_text("name: x\nrequest: {path: /x}\nreply: {}\n")
    with pytest.raises(ConfigError, match=r"field `reply`: expected stream, json or both"):
        load_template(empty)
    with pytest.raises(ConfigError, match="cannot read the template"):
        load_template(tmp_path / "missing.yaml")


def test_placeholders_become_values_and_history_a_list(tmp_path: Path) -> None:
    template = tmp_path / "t.yaml"
    template.write_text(
        "name: t\n"
        "request:\n"
        "  path: /r/{role}/chat?s={session_id}\n"
        "  body: {text: 'Q: {message}', past: '{history}', live: '{stream}', model: '{model}'}\n"
        "reply: {json: {text: answer}}\n"
    )
    adapter = TemplateAdapter(TargetOptions(api="template", template=template), None)
    assert adapter.stateless and not adapter.streams(True)  # no stream reader: JSON whatever was asked
    call = TurnCall('say "hi"', "dr who", "s 1", True, (Exchange("a", "b"),), "You are X.")
    request = adapter.request(call)
    assert request.path == "/r/dr%20who/chat?s=s%201" and not request.stream
    assert json.loads(request.body or b"") == {
        "text": 'Q: say "hi"',
        "past": [
            {"role": "system", "content": "You are X."},
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
        ],
        "live": False,
        "model": "dr who",
    }
    assert adapter.read_body(b'{"answer": "one two"}').output_tokens == 2  # words, without a count field
    assert adapter.read_body(b'{"other": 1}').error == "unreadable answer: no text at answer"


@given(message=st.text(max_size=200), session=st.text(min_size=1, max_size=40))
def test_any_message_reaches_the_body_exactly_as_written(message: str, session: str) -> None:
    spec = TemplateSpec.model_validate(
        {
            "name": "t",
            "request": {
                "path": "/c",
                "body": {"m": "{message}", "quoted": "<{message}>", "s": ["{session_id}"]},
            },
            "reply": {"json": {"text": "a"}},
        }
    )
    request = TemplateAdapter(TargetOptions(api="template"), None, spec).request(
        TurnCall(message, "r", session, False)
    )
    assert json.loads(request.body or b"") == {"m": message, "quoted": f"<{message}>", "s": [session]}
