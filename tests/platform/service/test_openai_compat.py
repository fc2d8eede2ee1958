"""`/v1/chat/completions` as the official `openai` client sees it, against a real service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from rolescope.serving.launcher import ServiceProcess, launch_service


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, fast_roles_path: Path) -> Iterator[ServiceProcess]:
    work: Path = tmp_path_factory.mktemp("openai")
    with launch_service(
        roles_path=fast_roles_path, db_path=work / "s.db", log_path=work / "serve.log"
    ) as process:
        yield process


@pytest.fixture
def client(api: ServiceProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{api.url}/v1", api_key="unused", max_retries=0, timeout=30) as client:
        yield client


def test_non_streaming_completion(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="sherlock", messages=[{"role": "user", "content": "Who left the muddy boots?"}]
    )
    assert completion.object == "chat.completion" and completion.model == "sherlock"
    text = completion.choices[0].message.content
    assert text and "boots" in text
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_streaming_completion_with_usage_matches_the_non_streaming_text(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Which way is the north road?"}]
    whole = client.chat.completions.create(model="grimble", messages=messages)  # type: ignore[arg-type]
    stream = client.chat.completions.create(
        model="grimble",
        messages=messages,
        stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert sum(1 for p in pieces if p) >= 3
    assert "".join(pieces) == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]


def test_history_in_messages_changes_the_answer(client: openai.OpenAI) -> None:
    question = {"role": "user", "content": "And the letter?"}
    alone = client.chat.completions.create(model="sherlock", messages=[question])  # type: ignore[list-item]
    with_history = client.chat.completions.create(
        model="sherlock",
        messages=[  # type: ignore[list-item]
            {"role": "user", "content": "The vicar keeps a crimson umbrella."},
            {"role": "assistant", "content": "Most singular."},
            question,
        ],
    )
    assert alone.choices[0].message.content != with_history.choices[0].message.content


def test_unknown_model_and_bad_messages_are_client_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="moriarty", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="sherlock", messages=[])


def test_any_conversation_the_schema_admits_is_answered(client: openai.OpenAI) -> None:
    # As with an OpenAI server: the last message is answered whatever its role, even when empty.
    for messages in (
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Elementary"}],
        [{"role": "tool", "content": "42", "tool_call_id": "call_1"}],
        [{"role": "user", "content": ""}],
    ):
        completion = client.chat.completions.create(model="sherlock", messages=messages)  # type: ignore[arg-type]
        assert completion.choices[0].message.content


def test_an_inference_failure_is_a_server_error_on_both_paths(tmp_path: Path, fast_roles_path: Path) -> None:
    with (
        launch_service(
            roles_path=fast_roles_path, db_path=tmp_path / "s.db", env={"ROLESCOPE_FAULT_ERROR_RATE": "1"}
        ) as failing,
        openai.OpenAI(base_url=f"{failing.url}/v1", api_key="unused", max_retries=0, timeout=30) as client,
    ):
        messages = [{"role": "user", "content": "Who left the muddy boots?"}]
        with pytest.raises(openai.InternalServerError, match="role 'sherlock' failed to answer") as failed:
            client.chat.completions.create(model="sherlock", messages=messages)  # type: ignore[arg-type]
        assert failed.value.status_code == 500
        stream = client.chat.completions.create(model="sherlock", messages=messages, stream=True)  # type: ignore[arg-type]
        # The failure arrives as an error event inside the 200 stream; the client raises on it.
        with pytest.raises(openai.APIError, match="role 'sherlock' failed to answer"):
            list(stream)


def test_models_lists_every_role_served(client: openai.OpenAI, api: ServiceProcess) -> None:
    models = client.models.list()
    served = {role["name"] for role in httpx.get(f"{api.url}/v1/roles").json()["roles"]}
    assert {model.id for model in models.data} == served and "sherlock" in served
    assert all(model.owned_by == "rolescope" for model in models.data)
