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
from rolescope.service.launcher import ServiceProcess, launch_service

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
    assert lines[:5] == [
        f"✅ Loaded role: {n} (v{v})"
        for n, v in [
            ("curie", "2.0"),
            ("grimble", "0.9.1"),
            ("pacer", "1.0"),
            ("sherlock", "1.2"),
            ("slowpoke", "1.0"),
        ]
    ]
    assert re.fullmatch(r"✅ Memory backend: SQLite \(.*chat\.db\)", lines[5])
    assert lines[6] == f"🚀 HTTP server listening on :{api.port}"


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
    }
    assert body["role"] == "sherlock" and "pearl" in body["content"]
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
    }
