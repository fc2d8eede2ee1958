"""rolescope's `/v1/chat/completions` as AIPerf, GuideLLM and `vllm bench serve` drive it.

Each request is shaped as those tools send it (their fields, their stream
options, vLLM's length extensions), through the official `openai` client
against a real `rolescope serve`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rolescope.inference.tokens import count_tokens
from rolescope.serving.launcher import ServiceProcess, launch_service

GRIMBLE_MAX_TOKENS = 70  # examples/grimble.yaml: the role's own reply limit


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, fast_roles_path: Path) -> Iterator[ServiceProcess]:
    work: Path = tmp_path_factory.mktemp("peers")
    with launch_service(
        roles_path=fast_roles_path, db_path=work / "s.db", log_path=work / "serve.log"
    ) as process:
        yield process


@pytest.fixture
def client(api: ServiceProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{api.url}/v1", api_key="unused", max_retries=0, timeout=30) as client:
        yield client


def _stream(client: openai.OpenAI, **request: Any) -> tuple[list[str], Any]:
    chunks = list(client.chat.completions.create(stream=True, **request))
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    usage = next(c.usage for c in reversed(chunks) if c.usage is not None)
    assert chunks[-1].choices == [], "the usage chunk comes last, with no choices"
    return deltas, usage


def test_health_answers_as_guidellm_validates_it(api: ServiceProcess) -> None:
    # GuideLLM's backend validation: GET {target}/health, raise_for_status.
    response = httpx.get(f"{api.url}/health", headers={"Authorization": "Bearer unused"}, timeout=10)
    response.raise_for_status()
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize("length", [5, 40, 3 * GRIMBLE_MAX_TOKENS])
def test_guidellm_fixed_output_length_is_served_exactly(client: openai.OpenAI, length: int) -> None:
    # GuideLLM's chat body for a fixed output length, with its stream options.
    deltas, usage = _stream(
        client,
        model="grimble",
        messages=[{"role": "user", "content": "Tell me about the north road."}],
        max_completion_tokens=length,
        stream_options={"include_usage": True},
        extra_body={
            "stop": None,
            "ignore_eos": True,
            "stream_options": {"include_usage": True, "continuous_usage_stats": True},
        },
    )
    assert usage.completion_tokens == length
    assert len(deltas) == length  # one token per content delta: a token-counting client agrees
    assert count_tokens("".join(deltas)) == length


def test_aiperf_request_with_ignore_eos_and_named_text_parts(client: openai.OpenAI) -> None:
    # AIPerf's payload: a `name` on the message, max_completion_tokens, --extra-inputs ignore_eos:true.
    completion = client.chat.completions.create(
        model="sherlock",
        messages=[{"role": "user", "name": "text", "content": "Who left the muddy boots?"}],
        max_completion_tokens=150,
        extra_body={"ignore_eos": True},
    )
    text = completion.choices[0].message.content or ""
    assert completion.usage is not None and completion.usage.completion_tokens == 150
    assert count_tokens(text) == 150
    # The same without ignore_eos stops where the role stops: within its own limit.
    natural = client.chat.completions.create(
        model="sherlock",
        messages=[{"role": "user", "content": [{"type": "text", "text": "Who left the muddy boots?"}]}],
        max_completion_tokens=150,
    )
    assert natural.usage is not None and natural.usage.completion_tokens <= 120


def test_min_tokens_is_a_floor_and_max_completion_tokens_wins(client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "Which way is the north road?"}]
    floored = client.chat.completions.create(
        model="grimble", messages=messages, max_tokens=200, extra_body={"min_tokens": 150}
    )
    assert floored.usage is not None and 150 <= floored.usage.completion_tokens <= 200
    capped = client.chat.completions.create(
        model="grimble", messages=messages, max_tokens=50, max_completion_tokens=3
    )
    assert capped.usage is not None and capped.usage.completion_tokens <= 3


def test_impossible_lengths_are_refused_with_the_reason(client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.UnprocessableEntityError, match="min_tokens is 20"):
        client.chat.completions.create(
            model="grimble", messages=messages, max_tokens=10, extra_body={"min_tokens": 20}
        )
    with pytest.raises(openai.UnprocessableEntityError, match="limit per reply"):
        client.chat.completions.create(
            model="grimble", messages=messages, max_tokens=50_000, extra_body={"ignore_eos": True}
        )
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="grimble", messages=messages, extra_body={"min_tokens": -1})


def test_metrics_on_the_api_port_parse_as_prometheus_text(client: openai.OpenAI, api: ServiceProcess) -> None:
    # AIPerf scrapes {url}/metrics on the inference port during a run, without an API key.
    _stream(
        client,
        model="grimble",
        messages=[{"role": "user", "content": "hi"}],
        stream_options={"include_usage": True},
    )
    response = httpx.get(f"{api.url}/metrics", timeout=10)
    assert response.status_code == 200
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert any(name.startswith("rolescope_") for name in families)
    # A labelled histogram without observations yet has no samples; the observed ones have buckets.
    observed = [f for f in families.values() if f.type == "histogram" and f.samples]
    assert observed and all(any(s.name.endswith("_bucket") for s in f.samples) for f in observed)
    # The server's own view of the streamed request, under the OpenTelemetry GenAI names.
    ttft = families["gen_ai_server_time_to_first_token_seconds"]
    assert any(s.name.endswith("_count") and s.value >= 1 for s in ttft.samples)
