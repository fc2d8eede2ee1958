"""Where the HTTP answers and the OpenAPI document once disagreed, against a real `rolescope serve`.

Each case here is one schemathesis found (tests/reliability/test_api_fuzz.py runs the whole
tool); these pin them down quickly and say what the contract is.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from pydantic import Field, TypeAdapter, ValidationError

from rolescope.service.api_models import NON_BLANK_PATTERN

WHITESPACE_ONLY = ["\u0085", "\u001c", "\u00a0", " \t\n", "\u3000\u2028"]


@pytest.fixture(scope="module")
def contract_service(tmp_path_factory: pytest.TempPathFactory, fast_roles_path: Path) -> Iterator[str]:
    """One real service for every check here (started the way tests/conftest.py's factory does)."""
    from rolescope.serving.launcher import launch_service

    work = tmp_path_factory.mktemp("contract")
    options = {"db_path": work / "s.db", "log_path": work / "serve.log"}
    with launch_service(roles_path=fast_roles_path, **options) as process:
        yield process.url


def _code_points() -> list[str]:
    return [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]


def test_the_non_blank_pattern_is_exactly_str_isspace_in_python_and_pydantic() -> None:
    # The service refuses what `str.strip()` empties; the schema must say the same, character by
    # character, in Python's regex engine and in pydantic's (Rust) one.
    python = re.compile(NON_BLANK_PATTERN)
    pydantic = TypeAdapter(Annotated[str, Field(pattern=NON_BLANK_PATTERN)])

    def pydantic_accepts(text: str) -> bool:
        try:
            pydantic.validate_python(text)
        except ValidationError:
            return False
        return True

    points = _code_points()
    assert [c for c in points if (python.search(c) is None) != c.isspace()] == []
    assert [c for c in points[:0x3100] if pydantic_accepts(c) == c.isspace()] == []


def _whitespace_only_messages_are_refused_as_the_schema_says(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    body = schema["components"]["schemas"]["ChatRequest"]["properties"]["message"]
    assert body["pattern"] == NON_BLANK_PATTERN
    query = next(p for p in schema["paths"]["/v1/chat"]["get"]["parameters"] if p["name"] == "message")
    # Optional (without a message, GET opens a session), so the string schema sits in an anyOf.
    string_schema = next(s for s in query["schema"]["anyOf"] if s.get("type") == "string")
    assert string_schema["pattern"] == NON_BLANK_PATTERN
    for message in WHITESPACE_ONLY:
        for answer in (
            client.post("/v1/chat", json={"message": message}),
            client.get("/v1/chat", params={"message": message}),
        ):
            assert answer.status_code == 422, (message, answer.text)
            assert answer.json()["error"]["message"].endswith("must not be empty or only whitespace")
    assert client.post("/v1/chat", json={"message": "\u0085 hi \u00a0"}).status_code == 200
    # Lax coercions the schema does not allow are refused too (boolean means boolean).
    assert client.post("/v1/chat", json={"message": "hi", "stream": 1}).status_code == 422


def _allow_lists_every_method_a_path_serves(client: httpx.Client) -> None:
    for method in ("OPTIONS", "PUT", "DELETE"):
        answer = client.request(method, "/v1/chat")
        assert answer.status_code == 405
        assert answer.headers["allow"] == "GET, POST"
    assert client.request("OPTIONS", "/v1/chat/completions").headers["allow"] == "POST"
    assert client.request("DELETE", "/v1/sessions/abcdefgh").headers["allow"] == "GET"


def _session_link_only_from_the_answer_that_has_a_json_body(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "links" not in paths["/v1/chat"]["get"]["responses"]["200"]  # always SSE
    link = paths["/v1/chat"]["post"]["responses"]["200"]["links"]["GetSession"]
    reply = client.post("/v1/chat", json={"message": "hello"}).json()
    assert link["parameters"]["session_id"] == "$response.body#/session_id"
    assert client.get(f"/v1/sessions/{reply['session_id']}").status_code == 200


def _completions_take_any_conversation_and_integers_as_json_schema_means_them(
    client: httpx.Client,
) -> None:
    base = {"model": "sherlock"}
    answered = client.post("/v1/chat/completions", json={**base, "messages": [{"role": "tool"}]})
    assert answered.status_code == 200, answered.text
    assert answered.json()["choices"][0]["message"]["content"]
    one = [{"role": "user", "content": "hi"}]
    assert client.post("/v1/chat/completions", json={**base, "messages": one, "max_tokens": 3.0}).is_success
    for bad in ({"max_tokens": True}, {"max_tokens": "3"}, {"max_tokens": 2.5}, {"temperature": False}):
        answer = client.post("/v1/chat/completions", json={**base, "messages": one, **bad})
        assert answer.status_code == 422, (bad, answer.text)


@pytest.mark.parametrize(
    "check",
    [
        _whitespace_only_messages_are_refused_as_the_schema_says,
        _allow_lists_every_method_a_path_serves,
        _session_link_only_from_the_answer_that_has_a_json_body,
        _completions_take_any_conversation_and_integers_as_json_schema_means_them,
    ],
    ids=lambda check: check.__name__.strip("_"),
)
def test_the_service_answers_as_its_openapi_document_says(
    check: Callable[[httpx.Client], None], contract_service: str
) -> None:
    with httpx.Client(base_url=contract_service, timeout=30) as client:
        check(client)
