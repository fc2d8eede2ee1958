"""WebSocket chat against a real `rolescope serve` process and a real WebSocket client (`websockets`)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import ServiceFactory

if TYPE_CHECKING:
    from rolescope.serving.launcher import ServiceProcess

KEY_A = "a" * 24
KEY_B = "b" * 24
RESPONSE_FIELDS = {
    "role",
    "role_version",
    "content",
    "timestamp",
    "confidence_score",
    "session_id",
    "trace_id",
    "usage",
}


def ws_url(service: ServiceProcess, path: str = "/v1/ws") -> str:
    return service.url.replace("http://", "ws://") + path


Frame = dict[str, Any]


async def turn(ws: ClientConnection, message: str, **fields: Any) -> tuple[list[Frame], Frame]:
    """Send one message; the token frames, then the terminal frame (`final` or `error`)."""
    await ws.send(json.dumps({"message": message, **fields}))
    tokens: list[dict[str, Any]] = []
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
        if frame["type"] == "token":
            tokens.append(frame)
        else:
            return tokens, frame


@pytest.fixture
def slow_roles_path(tmp_path: Path, fast_roles_path: Path) -> Path:
    """The fast roles, but sherlock takes 5 s to answer (for shutdown mid-turn)."""
    folder = tmp_path / "slow-roles"
    folder.mkdir()
    for source in fast_roles_path.glob("*.yaml"):
        document = yaml.safe_load(source.read_text())
        if document["name"] == "sherlock":
            document["inference"]["simulator"].update(ttft_ms=100, tokens_per_second=20)
            document["response_constraints"].update(max_tokens=100, min_sentences=4)
        (folder / source.name).write_text(yaml.safe_dump(document))
    return folder


def test_several_turns_on_one_connection_stream_tokens_then_the_chat_response(
    service_factory: ServiceFactory, fast_roles_path: Path
) -> None:
    service = service_factory(roles_path=fast_roles_path)

    async def scenario() -> None:
        async with connect(ws_url(service)) as ws:
            tokens, final = await turn(ws, "Who stole the necklace?", role="sherlock")
            assert len(tokens) > 1 and final["type"] == "final"
            response = final["response"]
            assert set(response) == RESPONSE_FIELDS
            assert response["content"] == "".join(t["text"] for t in tokens)
            assert [t["index"] for t in tokens] == list(range(len(tokens)))
            session = response["session_id"]
            tokens2, final2 = await turn(ws, "And the butler?", session_id=session)
            assert final2["type"] == "final" and final2["response"]["session_id"] == session
            assert final2["response"]["role"] == "sherlock" and len(tokens2) > 1
        history = httpx.get(f"{service.url}/v1/sessions/{session}", timeout=10).json()
        assert [t["speaker"] for t in history["turns"]] == ["user", "assistant"] * 2
        # The same session goes on over plain HTTP: one business layer behind both.
        body = {"message": "Well?", "session_id": session}
        answer = httpx.post(f"{service.url}/v1/chat", json=body, timeout=20)
        assert answer.status_code == 200 and set(answer.json()) == RESPONSE_FIELDS

    asyncio.run(scenario())


def test_bad_frames_get_error_frames_and_the_connection_stays_usable(
    service_factory: ServiceFactory, fast_roles_path: Path
) -> None:
    service = service_factory(roles_path=fast_roles_path)

    async def scenario() -> None:
        async with connect(ws_url(service)) as ws:
            await ws.send("{not json")
            bad = json.loads(await ws.recv())
            assert bad["type"] == "error" and bad["error"]["code"] == "bad_request" and bad["status"] == 400
            await ws.send(json.dumps({"mesage": "typo"}))
            invalid = json.loads(await ws.recv())
            assert invalid["error"]["code"] == "invalid_request"
            assert "message" in invalid["error"]["message"] and "mesage" in invalid["error"]["message"]
            _, unknown = await turn(ws, "Hello", role="moriarty")
            assert unknown == {
                "type": "error",
                "status": 404,
                "error": {"code": "unknown_role", "message": unknown["error"]["message"]},
            }
            _, final = await turn(ws, "Hello")
            assert final["type"] == "final"

    asyncio.run(scenario())


def test_role_path_names_the_role_and_an_unknown_one_is_refused_at_the_upgrade(
    service_factory: ServiceFactory, fast_roles_path: Path
) -> None:
    service = service_factory(roles_path=fast_roles_path)
    names = [r["name"] for r in httpx.get(f"{service.url}/v1/roles", timeout=10).json()["roles"]]
    other = next(n for n in names if n != names[0])

    async def scenario() -> None:
        async with connect(ws_url(service, f"/role/{other}")) as ws:
            _, final = await turn(ws, "Hello there")
            assert final["response"]["role"] == other
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(service, "/role/nobody")):
                pass
        assert refused.value.response.status_code == 404
        assert json.loads(refused.value.response.body)["error"]["code"] == "unknown_role"

    asyncio.run(scenario())


def test_a_message_sent_mid_turn_is_refused_with_turn_in_progress(
    service_factory: ServiceFactory, slow_roles_path: Path
) -> None:
    service = service_factory(roles_path=slow_roles_path)

    async def scenario() -> None:
        async with connect(ws_url(service)) as ws:
            await ws.send(json.dumps({"message": "First", "role": "sherlock"}))
            first = json.loads(await ws.recv())
            assert first["type"] == "token"
            await ws.send(json.dumps({"message": "Second"}))
            frames = [json.loads(await asyncio.wait_for(ws.recv(), 20))]
            while frames[-1]["type"] != "final":
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
            refusals = [f for f in frames if f["type"] == "error"]
            assert [f["error"]["code"] for f in refusals] == ["turn_in_progress"]

    asyncio.run(scenario())


def test_api_keys_are_required_on_the_upgrade_and_sessions_stay_with_their_owner(
    service_factory: ServiceFactory, fast_roles_path: Path
) -> None:
    service = service_factory(roles_path=fast_roles_path, env={"ROLESCOPE_API_KEYS": f"{KEY_A},{KEY_B}"})

    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(service)):
                pass
        assert refused.value.response.status_code == 401
        assert "api_key" in json.loads(refused.value.response.body)["error"]["message"]
        async with connect(ws_url(service), additional_headers={"Authorization": f"Bearer {KEY_A}"}) as ws:
            _, final = await turn(ws, "Mine")
            session = final["response"]["session_id"]
        # The key as a query parameter and as a subprotocol (for browsers), each another owner's here.
        async with connect(ws_url(service, f"/v1/ws?api_key={KEY_B}")) as ws:
            _, stolen = await turn(ws, "Yours?", session_id=session)
            assert stolen["type"] == "error" and stolen["error"]["code"] == "session_not_found"
        async with connect(ws_url(service), subprotocols=["rolescope.v1", f"rolescope.key.{KEY_A}"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "rolescope.v1"
            _, again = await turn(ws, "Still mine", session_id=session)
            assert again["type"] == "final" and again["response"]["session_id"] == session

    asyncio.run(scenario())


def test_origins_other_than_the_host_are_refused_unless_listed(
    service_factory: ServiceFactory, fast_roles_path: Path
) -> None:
    service = service_factory(
        roles_path=fast_roles_path, env={"ROLESCOPE_WS_ALLOWED_ORIGINS": "https://chat.example.com"}
    )
    host = service.url.removeprefix("http://")

    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(service), origin="https://evil.example.net"):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403
        for origin in (f"http://{host}", "https://chat.example.com"):
            async with connect(ws_url(service), origin=origin) as ws:  # type: ignore[arg-type]
                _, final = await turn(ws, "Hello")
                assert final["type"] == "final"

    asyncio.run(scenario())


def test_an_idle_connection_is_closed_with_a_reason(
    service_factory: ServiceFactory, fast_roles_path: Path
) -> None:
    service = service_factory(roles_path=fast_roles_path, env={"ROLESCOPE_WS_IDLE_TIMEOUT_S": "0.5"})

    async def scenario() -> None:
        async with connect(ws_url(service)) as ws:
            _, final = await turn(ws, "Hello")
            assert final["type"] == "final"
            started = time.monotonic()
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), timeout=10)
            assert 0.3 < time.monotonic() - started < 5
            assert ws.close_code == 1000 and ws.close_reason is not None and "idle" in ws.close_reason

    asyncio.run(scenario())


def test_an_oversize_frame_closes_the_connection_with_1009(
    service_factory: ServiceFactory, fast_roles_path: Path
) -> None:
    service = service_factory(roles_path=fast_roles_path, env={"ROLESCOPE_MAX_BODY_BYTES": "4096"})

    async def scenario() -> None:
        async with connect(ws_url(service)) as ws:
            await ws.send(json.dumps({"message": "x" * 8000}))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), timeout=10)
            assert ws.close_code == 1009

    asyncio.run(scenario())


def test_a_message_over_max_message_chars_gets_the_http_error(
    service_factory: ServiceFactory, fast_roles_path: Path
) -> None:
    service = service_factory(roles_path=fast_roles_path, env={"ROLESCOPE_MAX_MESSAGE_CHARS": "50"})

    async def scenario() -> None:
        async with connect(ws_url(service)) as ws:
            _, error = await turn(ws, "y" * 60)
            http = httpx.post(f"{service.url}/v1/chat", json={"message": "y" * 60}, timeout=10)
            expected = (http.status_code, http.json()["error"]["code"])
            assert (error["status"], error["error"]["code"]) == expected

    asyncio.run(scenario())


def test_a_client_that_does_not_read_is_disconnected_and_server_memory_stays_bounded(
    service_factory: ServiceFactory, tmp_path: Path, fast_roles_path: Path
) -> None:
    folder = tmp_path / "chatty"
    folder.mkdir()
    document = yaml.safe_load((fast_roles_path / "sherlock.yaml").read_text())
    document["inference"]["simulator"].update(ttft_ms=0, tokens_per_second=100_000)
    # Words of 20,000 characters: a few turns outgrow the kernel's socket buffers (megabytes on loopback).
    document["persona"].update(
        openers=["A" * 20_000], closers=["Z" * 20_000 + "."], catchphrases=["Q" * 20_000 + "."]
    )
    document["response_constraints"].update(max_length=100_000, min_sentences=3, max_sentences=6)
    (folder / "sherlock.yaml").write_text(yaml.safe_dump(document, width=1_000_000))
    service = service_factory(roles_path=folder, env={"ROLESCOPE_WS_SEND_QUEUE_CHARS": "4096"})

    async def scenario() -> None:
        # A small receive buffer and a client that stops reading: back-pressure reaches the server fast.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", int(service.url.rsplit(":", 1)[1])))
        async with connect(ws_url(service), sock=sock, max_queue=1, compression=None) as ws:
            for index in range(100):
                await ws.send(json.dumps({"message": f"Tell me everything, part {index}"}))
                await asyncio.sleep(0.02)
            received = 0
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), timeout=20)
                    received += 1
            assert ws.close_code == 1013, (ws.close_code, ws.close_reason, received)
            assert "slowly" in (ws.close_reason or "")

    asyncio.run(scenario())
    # The service is still healthy for everyone else.
    assert httpx.get(f"{service.url}/readyz", timeout=10).status_code == 200


def test_sigterm_mid_turn_sends_a_terminal_frame_then_closes_1001(
    service_factory: ServiceFactory, slow_roles_path: Path
) -> None:
    service = service_factory(roles_path=slow_roles_path, env={"ROLESCOPE_SHUTDOWN_TIMEOUT_S": "2"})

    async def scenario() -> list[dict[str, Any]]:
        async with connect(ws_url(service)) as busy, connect(ws_url(service)) as idle:
            await busy.send(json.dumps({"message": "A long story, please", "role": "sherlock"}))
            frames = [json.loads(await busy.recv())]
            assert frames[0]["type"] == "token"
            service.process.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                while True:
                    frames.append(json.loads(await asyncio.wait_for(busy.recv(), timeout=15)))
            assert busy.close_code == 1001, (busy.close_code, busy.close_reason)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(idle.recv(), timeout=15)
            assert idle.close_code == 1001
            return frames

    frames = asyncio.run(scenario())
    terminal = [f for f in frames if f["type"] != "token"]
    assert len(terminal) == 1
    # The reply needs 5 s; the grace period is half the 2 s shutdown timeout.
    assert terminal[0]["type"] == "error" and terminal[0]["error"]["code"] == "shutting_down"
    assert service.process.wait(timeout=20) in (0, -signal.SIGTERM)


def test_turns_are_counted_under_route_ws_with_the_open_connections_gauge(
    service_factory: ServiceFactory, fast_roles_path: Path
) -> None:
    service = service_factory(roles_path=fast_roles_path)

    def metric(text: str, prefix: str) -> float:
        # The role version is its own label (release policies); these counts are per role.
        lines = (re.sub(r',role_version="[^"]*"', "", line) for line in text.splitlines())
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix))

    async def scenario() -> None:
        async with connect(ws_url(service)) as ws:
            for _ in range(2):
                await turn(ws, "Hello", role="sherlock")
            await turn(ws, "Hello", role="moriarty")
            await ws.send("{not json")  # refused frames count too, as refused HTTP requests do
            assert json.loads(await ws.recv())["status"] == 400
            text = httpx.get(f"{service.url}/metrics", timeout=10).text
            assert metric(text, "rolescope_websocket_connections_open") == 1
            ok = 'rolescope_http_requests_total{method="WS",role="sherlock",route="ws",status_class="2xx"}'
            assert metric(text, ok) == 2
            refused = (
                'rolescope_http_requests_total{method="WS",role="<unknown>",route="ws",status_class="4xx"}'
            )
            assert metric(text, refused) == 2
            assert metric(text, "gen_ai_server_time_to_first_token_seconds_count{") >= 2
        text = httpx.get(f"{service.url}/metrics", timeout=10).text
        deadline = time.monotonic() + 5
        while metric(text, "rolescope_websocket_connections_open") != 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            text = httpx.get(f"{service.url}/metrics", timeout=10).text
        assert metric(text, "rolescope_websocket_connections_open") == 0

    asyncio.run(scenario())


def test_websocket_turns_are_captured_as_redacted_streamed_exchanges(
    service_factory: ServiceFactory, fast_roles_path: Path, tmp_path: Path
) -> None:
    from rolescope.loadtests.traffic_format import read_traffic

    captured = tmp_path / "captured.jsonl"
    service = service_factory(
        roles_path=fast_roles_path,
        extra_args=["--capture", str(captured), "--capture-sample", "1"],
        env={"ROLESCOPE_CAPTURE_KEY": "c" * 32},
    )

    async def scenario() -> None:
        async with connect(ws_url(service)) as ws:
            _, first = await turn(ws, "Mail me at jane.doe@example.org", role="sherlock")
            await turn(ws, "And then?", session_id=first["response"]["session_id"])

    asyncio.run(scenario())
    service.stop()
    assert "jane.doe@example.org" not in captured.read_text(encoding="utf-8")
    records = read_traffic(captured)
    assert [(r.turn, r.stream, r.original.status) for r in records] == [(0, True, 200), (1, True, 200)]
    assert len({r.session for r in records}) == 1


def _read_frames(raw: bytes) -> list[tuple[int, bytes]]:
    """Server frames (unmasked) as (opcode, payload)."""
    frames, at = [], 0
    while at + 2 <= len(raw):
        opcode, length = raw[at] & 0x0F, raw[at + 1] & 0x7F
        at += 2
        if length == 126:
            length, at = int.from_bytes(raw[at : at + 2], "big"), at + 2
        elif length == 127:
            length, at = int.from_bytes(raw[at : at + 8], "big"), at + 8
        frames.append((opcode, raw[at : at + length]))
        at += length
    return frames


def test_the_server_pings_and_closes_a_client_that_never_answers_with_1011(
    service_factory: ServiceFactory, fast_roles_path: Path
) -> None:
    service = service_factory(roles_path=fast_roles_path, env={"ROLESCOPE_WS_PING_INTERVAL_S": "0.3"})
    port = int(service.url.rsplit(":", 1)[1])
    # A bare socket that completes the handshake and then never reads nor answers a ping.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        time.sleep(1.5)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    frames = _read_frames(rest)
    assert 0x9 in [opcode for opcode, _ in frames]  # ping
    closes = [payload for opcode, payload in frames if opcode == 0x8]
    assert closes and int.from_bytes(closes[0][:2], "big") == 1011


def test_turns_share_the_concurrency_limit_with_http_chats(
    service_factory: ServiceFactory, slow_roles_path: Path
) -> None:
    service = service_factory(roles_path=slow_roles_path, env={"ROLESCOPE_CONCURRENCY_LIMIT": "1"})

    async def scenario() -> None:
        async with connect(ws_url(service)) as busy, connect(ws_url(service)) as other:
            await busy.send(json.dumps({"message": "A long story", "role": "sherlock"}))
            assert json.loads(await busy.recv())["type"] == "token"  # holds the one slot
            _, refused = await turn(other, "Me too", role="sherlock")
            assert refused["status"] == 503 and refused["error"]["code"] == "overloaded"
            async with httpx.AsyncClient(timeout=10) as client:
                http = await client.post(f"{service.url}/v1/chat", json={"message": "And me"})
            assert http.status_code == 503
            while json.loads(await asyncio.wait_for(busy.recv(), 20))["type"] == "token":
                pass
            _, later = await turn(other, "Now?", role="sherlock")  # the slot is free again
            assert later["type"] == "final"
        text = httpx.get(f"{service.url}/metrics", timeout=10).text
        assert 'rolescope_http_requests_rejected_total{reason="overload"} 2.0' in text

    asyncio.run(scenario())
