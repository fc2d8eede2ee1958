"""The role service's HTTP API against a real `rolescope serve` process (uvicorn on a free loopback port)."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from rolescope.event_stream import EventStreamDecoder
from rolescope.serving.launcher import ServiceProcess, launch_service

SLOW_ROLE = {
    "name": "slowpoke",
    "version": "1.0",
    "persona": {
        "display_name": "Slowpoke",
        "background": "A very slow thinker.",
        "traits": ["slow"],
        "speaking_style": "drawling",
    },
    "inference": {"timeout_ms": 150, "simulator": {"ttft_ms": 1000, "tokens_per_second": 100}},
}


# Streams at a realistic pace (short answers keep the test quick): tokens must arrive spread out in time.
PACER_TOKENS_PER_SECOND = 25
PACED_ROLE = {
    "name": "pacer",
    "version": "1.0",
    "persona": {
        "display_name": "Pacer",
        "background": "A steady narrator.",
        "traits": ["steady"],
        "speaking_style": "even",
    },
    "response_constraints": {"max_tokens": 30, "min_sentences": 2, "max_sentences": 3},
    "inference": {"simulator": {"ttft_ms": 20, "tokens_per_second": PACER_TOKENS_PER_SECOND, "jitter": 0.2}},
}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, fast_roles_path: Path) -> Iterator[ServiceProcess]:
    folder = tmp_path_factory.mktemp("roles")
    for path in fast_roles_path.glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    (folder / "pacer.yaml").write_text(yaml.safe_dump(PACED_ROLE))
    (folder / "slowpoke.yaml").write_text(yaml.safe_dump(SLOW_ROLE))
    work = tmp_path_factory.mktemp("service")
    with launch_service(roles_path=folder, db_path=work / "chat.db", log_path=work / "serve.log") as process:
        yield process


@dataclass
class Event:
    name: str
    data: str
    at: float


def read_events(response: httpx.Response) -> list[Event]:
    events: list[Event] = []
    decoder = EventStreamDecoder()
    for chunk in response.iter_bytes():
        at = time.monotonic()
        events += (Event(event.event, event.data, at) for event in decoder.feed(chunk))
    return events


def test_the_banner_lists_roles_then_memory_then_the_port_in_order(api: ServiceProcess) -> None:
    log = api.log()
    lines = [line for line in log.splitlines() if line.startswith(("✅", "🚀"))]
    assert lines[:6] == [
        f"✅ Loaded role: {n} (v{v})"
        for n, v in [
            ("curie", "2.0"),
            ("grimble", "0.9.1"),
            ("pacer", "1.0"),
            ("sherlock", "1.2"),
            ("slowpoke", "1.0"),
            ("storyteller", "1.0"),
        ]
    ]
    assert re.fullmatch(r"✅ Memory backend: SQLite \(.*chat\.db\)", lines[6])
    assert lines[7] == f"🚀 HTTP server listening on :{api.port}"


def test_chat_round_trip_returns_every_field(api: ServiceProcess) -> None:
    response = httpx.post(
        f"{api.url}/v1/chat", json={"message": "Who stole the pearl?", "role": "sherlock"}, timeout=30
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "role",
        "content",
        "timestamp",
        "confidence_score",
        "session_id",
        "trace_id",
        "usage",
        "role_version",
    }
    assert body["role"] == "sherlock" and "pearl" in body["content"]
    assert body["role_version"] == "1.2"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["timestamp"])
    assert 0 <= body["confidence_score"] <= 1
    assert len(body["session_id"]) >= 22
    assert re.fullmatch(r"[0-9a-f]{32}", body["trace_id"])
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0


def test_role_can_come_from_the_query_and_defaults_to_the_first_role(api: ServiceProcess) -> None:
    by_query = httpx.post(f"{api.url}/v1/chat?role=grimble", json={"message": "Any ale?"}, timeout=30).json()
    default = httpx.post(f"{api.url}/v1/chat", json={"message": "Any ale?"}, timeout=30).json()
    assert by_query["role"] == "grimble" and default["role"] == "curie"


def test_same_message_in_fresh_sessions_gives_the_same_answer(api: ServiceProcess) -> None:
    replies = [
        httpx.post(
            f"{api.url}/v1/chat", json={"message": "Is the butler lying?", "role": "sherlock"}, timeout=30
        ).json()
        for _ in range(2)
    ]
    assert replies[0]["session_id"] != replies[1]["session_id"]
    assert replies[0]["content"] == replies[1]["content"]
    assert replies[0]["usage"] == replies[1]["usage"]


def test_a_session_remembers_and_its_history_can_be_read(api: ServiceProcess) -> None:
    first = httpx.post(
        f"{api.url}/v1/chat",
        json={"message": "The gardener has a crimson umbrella.", "role": "sherlock"},
        timeout=30,
    ).json()
    session = first["session_id"]
    second = httpx.post(
        f"{api.url}/v1/chat", json={"message": "Who owns the boat?", "session_id": session}, timeout=30
    ).json()
    assert second["session_id"] == session and second["role"] == "sherlock"
    history = httpx.get(f"{api.url}/v1/sessions/{session}", timeout=10)
    assert history.status_code == 200
    turns = history.json()["turns"]
    assert [t["speaker"] for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[0]["content"] == "The gardener has a crimson umbrella."
    assert turns[3]["content"] == second["content"]


def test_sse_stream_sends_tokens_with_gaps_then_the_full_answer(api: ServiceProcess) -> None:
    with httpx.stream(
        "POST",
        f"{api.url}/v1/chat",
        json={"message": "Describe the footprints", "role": "pacer", "stream": True},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [e for e in read_events(response) if e.name != "ping"]
    tokens, final = events[:-1], events[-1]
    assert len(tokens) >= 5 and {e.name for e in tokens} == {"token"}
    assert final.name == "done"
    done = json.loads(final.data)
    assert "".join(json.loads(e.data)["text"] for e in tokens) == done["content"]
    assert done["usage"]["output_tokens"] == len(tokens)
    # The role streams at 25 tokens/s (jitter ±20 %): spread out in time, not delivered in one burst.
    spread = tokens[-1].at - tokens[0].at
    assert spread >= 0.5 * (len(tokens) - 1) / PACER_TOKENS_PER_SECOND


def test_accept_header_alone_selects_streaming(api: ServiceProcess) -> None:
    with httpx.stream(
        "POST",
        f"{api.url}/v1/chat",
        json={"message": "Any rumours?", "role": "grimble"},
        headers={"Accept": "text/event-stream"},
        timeout=30,
    ) as response:
        names = [e.name for e in read_events(response)]
    assert names[0] == "token" and names[-1] == "done"


def test_get_streaming_works_for_curl(api: ServiceProcess) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    import subprocess

    output = subprocess.run(
        [curl, "-sN", "--max-time", "30", f"{api.url}/v1/chat?role=sherlock&message=Who%20did%20it%3F"],
        capture_output=True,
        text=True,
        timeout=40,
        check=True,
    ).stdout
    assert output.count("event: token") >= 3
    done = output.split("event: done", 1)[1]
    assert json.loads(done.split("data:", 1)[1].split("\n", 1)[0])["role"] == "sherlock"


def test_roles_are_listed(api: ServiceProcess) -> None:
    roles = httpx.get(f"{api.url}/v1/roles", timeout=10).json()["roles"]
    by_name = {r["name"]: r for r in roles}
    assert (
        by_name["sherlock"]["version"] == "1.2" and by_name["sherlock"]["display_name"] == "Sherlock Holmes"
    )


def test_health_and_readiness(api: ServiceProcess) -> None:
    assert httpx.get(f"{api.url}/healthz", timeout=10).json()["status"] == "ok"
    ready = httpx.get(f"{api.url}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/v1/chat", {"message": "hi", "role": "moriarty"}, 404, "unknown_role"),
        ("GET", "/v1/sessions/no-such-session", None, 404, "session_not_found"),
        ("POST", "/v1/chat", {"role": "sherlock"}, 422, "invalid_request"),
        ("POST", "/v1/chat", {"message": "hi", "unexpected": 1}, 422, "invalid_request"),
        ("POST", "/v1/chat", {"message": "   "}, 422, "invalid_request"),
        ("POST", "/v1/chat", {"message": "x" * 5000}, 422, "invalid_request"),
        ("POST", "/v1/chat", {"message": "hi", "session_id": "../../etc"}, 422, "invalid_request"),
        ("POST", "/v1/chat", {"message": "y" * 70_000}, 413, "payload_too_large"),
        ("POST", "/v1/chat", {"message": "Still thinking?", "role": "slowpoke"}, 504, "inference_timeout"),
        (
            "POST",
            "/v1/chat/completions",
            {"model": "moriarty", "messages": [{"role": "user", "content": "hi"}]},
            404,
            "unknown_role",
        ),
        ("GET", "/v1/nowhere", None, 404, "not_found"),
    ],
    ids=[
        "unknown-role",
        "unknown-session",
        "missing-field",
        "extra-field",
        "blank",
        "too-long",
        "bad-session-id",
        "oversize",
        "timeout",
        "openai-unknown-model",
        "unknown-path",
    ],
)
def test_errors_are_json_with_the_right_status(
    api: ServiceProcess, method: str, path: str, body: object, status: int, code: str
) -> None:
    response = httpx.request(method, f"{api.url}{path}", json=body, timeout=30)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert "Traceback" not in response.text and 'File "' not in response.text


def test_malformed_json_is_a_422(api: ServiceProcess) -> None:
    response = httpx.post(
        f"{api.url}/v1/chat", content=b"{not json", timeout=10, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"


def test_a_rejected_request_changes_nothing(api: ServiceProcess) -> None:
    first = httpx.post(
        f"{api.url}/v1/chat", json={"message": "Note the ash.", "role": "sherlock"}, timeout=30
    )
    session = first.json()["session_id"]
    before = httpx.get(f"{api.url}/v1/sessions/{session}", timeout=10).json()
    rejected = [
        httpx.post(f"{api.url}/v1/chat", json={"message": "x" * 5000, "session_id": session}, timeout=30),
        httpx.post(
            f"{api.url}/v1/chat", json={"message": "hi", "session_id": session, "role": "curie"}, timeout=30
        ),
        httpx.post(
            f"{api.url}/v1/chat", json={"message": "hi", "session_id": session, "role": "nobody"}, timeout=30
        ),
    ]
    assert [r.status_code for r in rejected] == [422, 409, 404]
    assert httpx.get(f"{api.url}/v1/sessions/{session}", timeout=10).json() == before


def test_a_timeout_mid_stream_becomes_an_error_event(api: ServiceProcess) -> None:
    with httpx.stream(
        "GET", f"{api.url}/v1/chat", params={"role": "slowpoke", "message": "Well?"}, timeout=30
    ) as response:
        events = read_events(response)
    assert events[-1].name == "error"
    assert json.loads(events[-1].data)["error"]["code"] == "inference_timeout"


def test_openapi_documents_the_routes_and_their_errors(api: ServiceProcess) -> None:
    spec = httpx.get(f"{api.url}/openapi.json", timeout=10).json()
    chat = spec["paths"]["/v1/chat"]["post"]
    assert {"200", "404", "413", "422", "504"} <= set(chat["responses"])
    assert "text/event-stream" in chat["responses"]["200"]["content"]
    for path in ("/v1/chat/completions", "/v1/roles", "/v1/sessions/{session_id}", "/healthz", "/readyz"):
        assert path in spec["paths"]
    response_fields = spec["components"]["schemas"]["ChatResponse"]["properties"]
    assert set(response_fields) == {
        "role",
        "content",
        "timestamp",
        "confidence_score",
        "session_id",
        "trace_id",
        "usage",
        "role_version",
    }


@pytest.fixture(scope="module")
def versioned_api(
    tmp_path_factory: pytest.TempPathFactory, fast_roles_path: Path
) -> Iterator[ServiceProcess]:
    """sherlock 1.2 (the bundled file) and 1.3 (a second file whose every answer opens "Indubitably,")."""
    folder = tmp_path_factory.mktemp("versioned-roles")
    shutil.copy(fast_roles_path / "sherlock.yaml", folder / "sherlock.yaml")
    shutil.copy(fast_roles_path / "grimble.yaml", folder / "grimble.yaml")
    newer = yaml.safe_load((fast_roles_path / "sherlock.yaml").read_text())
    newer["version"] = "1.3"
    newer["persona"]["openers"] = ["Indubitably,"]
    newer["inference"]["model"] = "sherlock-sim-2"
    (folder / "sherlock-next.yaml").write_text(yaml.safe_dump(newer))
    work = tmp_path_factory.mktemp("versioned")
    with launch_service(roles_path=folder, db_path=work / "chat.db", log_path=work / "serve.log") as process:
        yield process


def test_two_versions_of_a_role_serve_side_by_side_and_requests_may_pin_one(
    versioned_api: ServiceProcess,
) -> None:
    url = versioned_api.url

    def content(**request: object) -> str:
        params = request.pop("params", None)
        response = httpx.post(f"{url}/v1/chat", json=request, params=params, timeout=30)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        assert response.json()["role"] == "sherlock"  # the name, whichever version answered
        return str(response.json()["content"])

    assert content(message="Who took the pearl?", role="sherlock").startswith("Indubitably,")
    assert content(message="Who took the pearl?", role="sherlock@1.3").startswith("Indubitably,")
    assert not content(message="Who took the pearl?", role="sherlock@1.2").startswith("Indubitably,")
    assert not content(message="Who took the pearl?", params={"role": "sherlock@1.2"}).startswith(
        "Indubitably"
    )

    with httpx.stream(
        "GET", f"{url}/v1/chat", params={"role": "sherlock@1.2", "message": "And the ruby?"}, timeout=30
    ) as stream:
        events = read_events(stream)
    assert events[-1].name == "done"
    assert not json.loads(events[-1].data)["content"].startswith("Indubitably")

    log = versioned_api.log()
    assert "✅ Loaded role: sherlock (v1.2)" in log and "✅ Loaded role: sherlock (v1.3)" in log
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    assert 'gen_ai_request_model="sherlock-sim-1"' in metrics  # the pinned version's model, by name
    assert 'gen_ai_request_model="sherlock-sim-2"' in metrics
    assert 'gen_ai_request_model="<other>"' not in metrics
    assert 'role="sherlock",role_version="1.2"' in metrics and 'role="sherlock",role_version="1.3"' in metrics


def test_an_unknown_version_is_a_404_that_lists_the_loaded_versions(versioned_api: ServiceProcess) -> None:
    response = httpx.post(
        f"{versioned_api.url}/v1/chat", json={"message": "hi", "role": "sherlock@2.0"}, timeout=30
    )
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "unknown_role",
        "message": "role 'sherlock' has no version '2.0'; loaded versions: 1.2, 1.3",
    }
    completions = httpx.post(
        f"{versioned_api.url}/v1/chat/completions",
        json={"model": "sherlock@1.2", "messages": [{"role": "user", "content": "Who took the pearl?"}]},
        timeout=30,
    )
    assert completions.status_code == 200, completions.text
    assert not completions.json()["choices"][0]["message"]["content"].startswith("Indubitably")


def test_roles_list_every_loaded_version(versioned_api: ServiceProcess) -> None:
    roles = httpx.get(f"{versioned_api.url}/v1/roles", timeout=10).json()["roles"]
    sherlock = next(r for r in roles if r["name"] == "sherlock")
    assert sherlock["version"] == "1.3" and sherlock["model"] == "sherlock-sim-2"
    assert sherlock["versions"] == [
        {"version": "1.2", "model": "sherlock-sim-1", "backend": "simulator", "default": False,
         "weight": None},
        {"version": "1.3", "model": "sherlock-sim-2", "backend": "simulator", "default": True,
         "weight": None},
    ]
    assert [r["name"] for r in roles] == ["grimble", "sherlock"]


SHERLOCK_GREETING = "Good day. You have come about a matter of some delicacy, I perceive."


def _greeting(url: str, **params: str) -> list[Event]:
    with httpx.stream("GET", f"{url}/v1/chat", params=params, timeout=30) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return read_events(response)


def test_get_without_a_message_opens_a_session_with_the_greeting_streamed(api: ServiceProcess) -> None:
    events = _greeting(api.url, role="sherlock")

    tokens = [json.loads(e.data) for e in events if e.name == "token"]
    assert len(tokens) >= 5 and [t["index"] for t in tokens] == list(range(len(tokens)))
    assert "".join(t["text"] for t in tokens) == SHERLOCK_GREETING
    assert events[-1].name == "done"
    done = json.loads(events[-1].data)
    assert done["role"] == "sherlock" and done["content"] == SHERLOCK_GREETING
    assert done["usage"] == {"input_tokens": 0, "output_tokens": len(tokens)}
    session_id = done["session_id"]

    stored = httpx.get(f"{api.url}/v1/sessions/{session_id}", timeout=10).json()
    assert stored["role"] == "sherlock"
    assert [(t["speaker"], t["content"]) for t in stored["turns"]] == [("assistant", SHERLOCK_GREETING)]

    reply = httpx.post(
        f"{api.url}/v1/chat", json={"message": "Who stole the pearl?", "session_id": session_id}, timeout=30
    )
    assert reply.status_code == 200 and reply.json()["role"] == "sherlock"
    turns = httpx.get(f"{api.url}/v1/sessions/{session_id}", timeout=10).json()["turns"]
    assert [t["speaker"] for t in turns] == ["assistant", "user", "assistant"]


def test_the_seed_command_curl_without_a_message_greets(api: ServiceProcess) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    import subprocess

    output = subprocess.run(
        [curl, "-sN", "--max-time", "30", f"{api.url}/v1/chat?role=sherlock"],
        capture_output=True,
        text=True,
        timeout=40,
        check=True,
    ).stdout
    assert output.count("event: token") >= 5
    done = json.loads(output.split("event: done", 1)[1].split("data:", 1)[1].split("\n", 1)[0])
    assert done["content"] == SHERLOCK_GREETING and done["session_id"]


def test_a_plain_text_persona_greets_neutrally(api: ServiceProcess) -> None:
    events = _greeting(api.url, role="storyteller")
    done = json.loads(events[-1].data)
    assert events[-1].name == "done" and done["role"] == "storyteller"
    assert done["content"] == "Hello. What would you like to talk about?"
    assert sum(1 for e in events if e.name == "token") > 1


def test_opening_sessions_refuses_what_a_message_would_refuse(api: ServiceProcess) -> None:
    unknown = httpx.get(f"{api.url}/v1/chat", params={"role": "moriarty"}, timeout=10)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_role"

    chosen = "my-own-session-1"
    done = json.loads(_greeting(api.url, role="grimble", session_id=chosen)[-1].data)
    assert done["session_id"] == chosen
    again = httpx.get(f"{api.url}/v1/chat", params={"role": "grimble", "session_id": chosen}, timeout=10)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "session_already_open"
    assert again.json()["error"]["message"] == (
        f"session {chosen!r} is already open; send a message to continue it"
    )
    post = httpx.post(f"{api.url}/v1/chat", json={"role": "sherlock"}, timeout=10)
    assert post.status_code == 422  # only GET opens a session without a message
