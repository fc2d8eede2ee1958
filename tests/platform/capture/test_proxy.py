"""The capturing proxy in front of real servers: rolescope's own service and foreign ones written here.

Every server is real (uvicorn on a free loopback port), the proxy is the
`rolescope capture` command in a child process, and the records are read back
from the file it wrote after a SIGTERM.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from rolescope.capture.observer import CaptureObserver
from rolescope.capture.protocols.openai_api import conversation_id
from rolescope.capture.proxy_launcher import ProxyProcess, launch_proxy
from rolescope.loadtests.traffic_format import TrafficRecord, group_sessions, read_traffic

KEY = "proxy-test-key-0123456789abcdef"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
CANARIES = {
    "email": "canary.person@example.org",
    "phone": "+1 415 555 0142",
    "aws": AWS_SECRET,
}
CANARY_MESSAGE = (
    f"Write to {CANARIES['email']} or call {CANARIES['phone']}; "
    f"my aws_secret_access_key={CANARIES['aws']} is safe with you."
)
TOKENS = ["The ", "game ", "is ", "afoot", "!", " Indeed."]
GAP_S = 0.08

ProxyFactory = Callable[..., ProxyProcess]


@pytest.fixture
def capture_proxy(tmp_path: Path) -> Iterator[ProxyFactory]:
    started: list[ProxyProcess] = []

    def start(upstream: str, *args: str, out: Path | None = None) -> ProxyProcess:
        proxy = launch_proxy(
            upstream,
            out=out or tmp_path / "captured.jsonl",
            extra_args=["--progress-every", "0", *args],
            env={"ROLESCOPE_CAPTURE_KEY": KEY},
            log_path=tmp_path / f"proxy-{len(started)}.log",
        )
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


def _chunk(delta: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps({"choices": [{"index": 0, "delta": delta}]}).encode() + b"\n\n"


async def _completions(request: Request) -> Response:
    body = await request.json()
    if body["model"] == "broken":
        return JSONResponse(
            {"error": {"message": "the model fell over", "type": "server_error"}},
            status_code=500,
            headers={"x-upstream-said": "so"},
        )
    if body["model"] == "sleepy":
        await asyncio.sleep(3)
    if body["model"] == "fragile":

        async def breaks_off() -> AsyncIterator[bytes]:
            yield _chunk({"content": "The "})
            await asyncio.sleep(0.05)
            raise RuntimeError("the upstream fell over mid-reply")

        return StreamingResponse(breaks_off(), media_type="text/event-stream")
    if not body.get("stream"):
        return JSONResponse(
            {
                "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(TOKENS)}}],
                "usage": {
                    "prompt_tokens": 9,
                    "completion_tokens": len(TOKENS),
                    "total_tokens": 9 + len(TOKENS),
                },
            }
        )

    async def events() -> AsyncIterator[bytes]:
        yield _chunk({"role": "assistant", "content": ""})  # an empty delta is not a token
        for index, token in enumerate(TOKENS):
            if index:
                await asyncio.sleep(GAP_S)
            yield _chunk({"content": token})
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


async def _echo_headers(request: Request) -> Response:
    return JSONResponse({name: value for name, value in request.headers.items()})


async def _echo_body(request: Request) -> Response:
    body = await request.body()
    return JSONResponse(
        {"size": len(body), "sha256": hashlib.sha256(body).hexdigest(), **dict(request.headers.items())}
    )


async def _seed_chat(request: Request) -> Response:
    body = await request.json()
    words = body["message"].split()

    async def events() -> AsyncIterator[bytes]:
        for word in words:
            yield b"data: " + json.dumps({"content": word + " "}).encode() + b"\n\n"
        yield b"data: " + json.dumps({"done": True, "usage": {"completion_tokens": 40 + len(words)}}).encode()
        yield b"\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


def foreign_app() -> Starlette:
    """An OpenAI-compatible server that is not rolescope, plus a seed-shaped chat API and a header echo."""
    return Starlette(
        routes=[
            Route("/v1/chat/completions", _completions, methods=["POST"]),
            Route("/echo-headers", _echo_headers, methods=["GET", "POST", "HEAD"]),
            Route("/echo-body", _echo_body, methods=["POST", "PUT"]),
            Route("/api/chat", _seed_chat, methods=["POST"]),
        ]
    )


def _stream_times(client: httpx.Client, url: str, body: dict[str, Any]) -> tuple[list[float], list[str]]:
    """Arrival time and text of each content delta, as a client reading the stream sees them."""
    times: list[float] = []
    texts: list[str] = []
    with client.stream("POST", url, json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: {"):
                delta = json.loads(line[6:])["choices"][0]["delta"]
                if delta.get("content"):
                    times.append(time.perf_counter())
                    texts.append(delta["content"])
    return times, texts


def _records(proxy: ProxyProcess, out: Path) -> list[TrafficRecord]:
    assert proxy.stop() == 0, proxy.log()
    return read_traffic(out)


def test_streamed_tokens_pass_through_one_by_one_like_upstream(
    asgi_server: Callable[..., Any], capture_proxy: ProxyFactory, tmp_path: Path
) -> None:
    upstream = asgi_server(foreign_app())
    proxy = capture_proxy(upstream.url)
    body = {"model": "holmes", "stream": True, "messages": [{"role": "user", "content": "Tell me."}]}
    with httpx.Client(timeout=10) as client:
        direct, _ = _stream_times(client, f"{upstream.url}/v1/chat/completions", body)
        proxied, texts = _stream_times(client, f"{proxy.url}/v1/chat/completions", body)
    assert texts == TOKENS
    spread_direct, spread_proxied = direct[-1] - direct[0], proxied[-1] - proxied[0]
    expected = GAP_S * (len(TOKENS) - 1)
    assert spread_proxied >= 0.8 * expected, "the proxy held tokens back and sent them together"
    assert abs(spread_proxied - spread_direct) < 0.1
    gaps = [later - earlier for earlier, later in itertools.pairwise(proxied)]
    assert min(gaps) > GAP_S / 3
    [record] = _records(proxy, tmp_path / "captured.jsonl")
    assert record.stream and record.role == "holmes" and record.message == "Tell me."
    assert record.original.status == 200 and record.original.output_tokens == len(TOKENS)
    assert record.original.latency_s >= expected


def test_canary_pii_and_secrets_never_reach_the_file(
    asgi_server: Callable[..., Any], capture_proxy: ProxyFactory, tmp_path: Path
) -> None:
    upstream = asgi_server(foreign_app())
    proxy = capture_proxy(upstream.url)
    with httpx.Client(timeout=10) as client:
        for stream in (False, True):
            body = {
                "model": "holmes",
                "stream": stream,
                "messages": [{"role": "user", "content": CANARY_MESSAGE}],
            }
            assert client.post(f"{proxy.url}/v1/chat/completions", json=body).status_code == 200
    records = _records(proxy, tmp_path / "captured.jsonl")
    text = (tmp_path / "captured.jsonl").read_text()
    assert len(records) == 2
    for name, canary in CANARIES.items():
        assert canary not in text, f"{name} canary leaked into the capture file"
    assert "15" + "55" + "0142" not in text.replace(" ", "")
    assert "<EMAIL_1>" in records[0].message and "<PHONE_1>" in records[0].message
    assert "<SECRET_1>" in records[0].message
    assert records[0].original.output_tokens == len(TOKENS)  # from usage in the JSON reply


def test_an_upstream_error_reaches_the_client_as_upstream_sent_it(
    asgi_server: Callable[..., Any], capture_proxy: ProxyFactory, tmp_path: Path
) -> None:
    upstream = asgi_server(foreign_app())
    proxy = capture_proxy(upstream.url)
    body = {"model": "broken", "messages": [{"role": "user", "content": "Hello?"}]}
    direct = httpx.post(f"{upstream.url}/v1/chat/completions", json=body, timeout=10)
    proxied = httpx.post(f"{proxy.url}/v1/chat/completions", json=body, timeout=10)
    assert proxied.status_code == direct.status_code == 500
    assert proxied.content == direct.content
    assert proxied.headers["x-upstream-said"] == "so"
    [record] = _records(proxy, tmp_path / "captured.jsonl")
    assert record.original.status == 500 and record.role == "broken"
    assert "0 upstream errors (502/504)" in proxy.log()


def test_an_unreachable_upstream_is_a_502_and_a_silent_one_a_504(
    asgi_server: Callable[..., Any], capture_proxy: ProxyFactory, free_port: int, tmp_path: Path
) -> None:
    down = capture_proxy(f"http://127.0.0.1:{free_port}", out=tmp_path / "down.jsonl")
    body = {"model": "sleepy", "messages": [{"role": "user", "content": "Hello?"}]}
    refused = httpx.post(f"{down.url}/v1/chat/completions", json=body, timeout=10)
    assert refused.status_code == 502
    assert refused.json()["error"]["code"] == "upstream_unreachable"
    assert set(refused.json()["error"]) == {"code", "message"}
    upstream = asgi_server(foreign_app())
    slow = capture_proxy(upstream.url, "--read-timeout", "0.5", out=tmp_path / "slow.jsonl")
    timed_out = httpx.post(f"{slow.url}/v1/chat/completions", json=body, timeout=10)
    assert timed_out.status_code == 504
    assert timed_out.json()["error"]["code"] == "upstream_timeout"
    assert down.stop() == 0 and slow.stop() == 0
    assert "1 upstream errors (502/504)" in down.log()
    assert "1 upstream errors (502/504)" in slow.log()


def test_sessions_are_sampled_whole_by_their_keyed_hash(
    asgi_server: Callable[..., Any], capture_proxy: ProxyFactory, tmp_path: Path
) -> None:
    upstream = asgi_server(foreign_app())
    proxy = capture_proxy(upstream.url, "--sample", "0.5")
    openers = [f"Conversation number {n} begins." for n in range(40)]
    with httpx.Client(timeout=10) as client:
        for opener in openers:
            history = [{"role": "user", "content": opener}]
            for turn in range(2):
                body = {"model": "holmes", "messages": history}
                reply = client.post(f"{proxy.url}/v1/chat/completions", json=body)
                assert reply.status_code == 200
                history = [
                    *history,
                    reply.json()["choices"][0]["message"],
                    {"role": "user", "content": f"And {turn}?"},
                ]
    sessions = group_sessions(_records(proxy, tmp_path / "captured.jsonl"))
    assert all([r.turn for r in turns] == [0, 1] for turns in sessions.values())
    judge = CaptureObserver(tmp_path / "unused.jsonl", 0.5, KEY.encode(), lambda *a: None)
    expected = {o for o in openers if judge.sampled(conversation_id("holmes", "", o))}
    assert 8 <= len(expected) <= 32
    assert {turns[0].message for turns in sessions.values()} == expected


def test_other_paths_pass_untouched_with_headers_except_hop_by_hop(
    asgi_server: Callable[..., Any], capture_proxy: ProxyFactory, tmp_path: Path
) -> None:
    upstream = asgi_server(foreign_app())
    proxy = capture_proxy(upstream.url)
    headers = {
        "x-custom": "kept",
        "connection": "keep-alive, x-hop",
        "x-hop": "dropped",
        "user-agent": "probe/1",
    }
    with httpx.Client(timeout=10) as client:
        del client.headers["accept-encoding"]
        seen = client.get(f"{proxy.url}/echo-headers?a=1", headers=headers).json()
        missing = client.post(f"{proxy.url}/nowhere", content=b"raw bytes")
        posted = client.post(f"{proxy.url}/echo-headers", content=b"twelve bytes").json()
    assert "transfer-encoding" not in seen and "content-length" not in seen, "a GET grew a body"
    assert posted["content-length"] == "12" and "transfer-encoding" not in posted
    assert seen["x-custom"] == "kept" and seen["user-agent"] == "probe/1"
    assert "x-hop" not in seen
    assert "accept-encoding" not in seen, "the proxy asked the upstream for an encoding the client did not"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert missing.status_code == 404
    assert not (tmp_path / "captured.jsonl").read_text()


def test_a_template_target_is_captured_with_its_own_session_and_token_count(
    asgi_server: Callable[..., Any], capture_proxy: ProxyFactory, tmp_path: Path
) -> None:
    template = tmp_path / "seed-chat.yaml"
    template.write_text(
        "name: seed-chat\n"
        "request:\n  method: POST\n  path: /api/chat\n"
        '  body: {message: "{message}", session_id: "{session_id}"}\n'
        "reply:\n  stream:\n    text: content\n    output_tokens: usage.completion_tokens\n"
        "    end: {field: done}\n"
    )
    upstream = asgi_server(foreign_app())
    proxy = capture_proxy(upstream.url, "--template", str(template))
    with httpx.Client(timeout=10) as client:
        for message in ("one two three", f"mail me at {CANARIES['email']}"):
            reply = client.post(f"{proxy.url}/api/chat", json={"message": message, "session_id": "seed-1"})
            assert reply.status_code == 200 and "done" in reply.text
    first, second = _records(proxy, tmp_path / "captured.jsonl")
    assert (first.turn, second.turn) == (0, 1) and first.session == second.session
    assert first.role == "seed-chat" and first.stream
    assert first.original.output_tokens == 43
    assert second.message == "mail me at <EMAIL_1>"


def test_an_unwritable_file_drops_records_and_never_fails_a_client(
    asgi_server: Callable[..., Any], capture_proxy: ProxyFactory
) -> None:
    upstream = asgi_server(foreign_app())
    proxy = capture_proxy(upstream.url, out=Path("/dev/full"))
    body = {"model": "holmes", "messages": [{"role": "user", "content": "Hello?"}]}
    with httpx.Client(timeout=10) as client:
        statuses = [client.post(f"{proxy.url}/v1/chat/completions", json=body).status_code for _ in range(20)]
    assert statuses == [200] * 20
    assert proxy.stop() == 0
    log = proxy.log()
    # Said once per reason (a full queue, a failed write), never once per record.
    reasons = re.findall(r"capture is dropping records \(([^)]*)\)", log)
    assert reasons and len(reasons) == len(set(reasons)), reasons
    final = re.findall(r"(\d+) sampled · (\d+) written · (\d+) dropped", log)[-1]
    assert final[0] == "20" and int(final[2]) >= 1


def _sse_done(text: str) -> dict[str, Any]:
    """The final `done` event of a rolescope stream."""
    event = text.split("event: done", 1)[1]
    return dict(json.loads(event.split("data: ", 1)[1].split("\r\n", 1)[0].split("\n", 1)[0]))


def test_in_front_of_rolescope_every_chat_shape_is_captured_and_redacted(
    service_factory: Callable[..., Any], fast_roles_path: Path, capture_proxy: ProxyFactory, tmp_path: Path
) -> None:
    service = service_factory(roles_path=fast_roles_path)
    proxy = capture_proxy(service.url)
    replies: list[tuple[str, int]] = []  # (session, output tokens) as the service reported them
    with httpx.Client(timeout=30) as client:
        plain = client.post(f"{proxy.url}/v1/chat", json={"message": CANARY_MESSAGE, "role": "sherlock"})
        assert plain.status_code == 200
        answer = plain.json()
        replies.append((answer["session_id"], answer["usage"]["output_tokens"]))
        session = answer["session_id"]
        streamed = client.post(
            f"{proxy.url}/v1/chat",
            json={"message": "And the dog?", "session_id": session, "role": "sherlock", "stream": True},
        )
        assert streamed.headers["content-type"].startswith("text/event-stream")
        done = _sse_done(streamed.text)
        replies.append((session, done["usage"]["output_tokens"]))
        got = client.get(f"{proxy.url}/v1/chat", params={"message": "Hello from GET", "role": "curie"})
        done = _sse_done(got.text)
        replies.append((done["session_id"], done["usage"]["output_tokens"]))
        body = {
            "model": "curie",
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": 30,
            "messages": [{"role": "user", "content": f"Reach me at {CANARIES['email']}"}],
        }
        openai = client.post(f"{proxy.url}/v1/chat/completions", json=body)
        usage = [json.loads(line[6:]) for line in openai.text.splitlines() if '"usage": {' in line]
        assert openai.status_code == 200 and usage
        unknown = client.post(f"{proxy.url}/v1/chat", json={"message": "hi", "role": "nobody"})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_role"
        roles = client.get(f"{proxy.url}/v1/roles")
        assert roles.status_code == 200
    text = (tmp_path / "captured.jsonl").read_text()
    records = _records(proxy, tmp_path / "captured.jsonl")
    for name, canary in CANARIES.items():
        assert canary not in text, f"{name} canary leaked into the capture file"
    assert [(r.role, r.stream, r.original.status) for r in records] == [
        ("sherlock", False, 200),
        ("sherlock", True, 200),
        ("curie", True, 200),
        ("curie", True, 200),
        ("nobody", False, 404),
    ]
    assert [r.original.output_tokens for r in records[:3]] == [tokens for _, tokens in replies]
    assert records[3].original.output_tokens == usage[-1]["usage"]["completion_tokens"]
    assert records[3].max_tokens == 30 and records[3].message == "Reach me at <EMAIL_1>"
    assert records[0].session == records[1].session and [records[0].turn, records[1].turn] == [0, 1]
    assert records[2].session not in (records[0].session, records[3].session)
    assert session not in text
    assert all(r.original.latency_s > 0 for r in records)


def test_sigint_lets_a_stream_under_way_finish_and_flushes_its_record(
    asgi_server: Callable[..., Any], capture_proxy: ProxyFactory, tmp_path: Path
) -> None:
    upstream = asgi_server(foreign_app())
    proxy = capture_proxy(upstream.url)
    body = {"model": "holmes", "stream": True, "messages": [{"role": "user", "content": "Go on."}]}
    texts: list[str] = []
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", f"{proxy.url}/v1/chat/completions", json=body) as response,
    ):
        for line in response.iter_lines():
            if '"content": "The "' in line:
                proxy.process.send_signal(signal.SIGINT)
            if line.startswith("data: {"):
                texts.append(json.loads(line[6:])["choices"][0]["delta"].get("content", ""))
    assert "".join(texts) == "".join(TOKENS)
    assert proxy.process.wait(timeout=15) == 0, proxy.log()
    [record] = read_traffic(tmp_path / "captured.jsonl")
    assert record.original.output_tokens == len(TOKENS)
    assert "1 chat exchanges · 1 sampled · 1 written" in proxy.log()


def test_usage_mistakes_exit_2_with_a_sentence(tmp_path: Path) -> None:
    import subprocess
    import sys

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cases = {
            "busy": (["--listen", f"127.0.0.1:{port}"], f"--listen 127.0.0.1:{port}: cannot listen there"),
            "template": (["--listen", "127.0.0.1:0", "--template", str(tmp_path / "no.yaml")], "no.yaml"),
            "upstream": (["--listen", "127.0.0.1:0", "--upstream", "nowhere"], "--upstream 'nowhere'"),
            "tls": (
                ["--listen", "127.0.0.1:0", "--ca", str(tmp_path / "ca.pem")],
                "--ca, --client-cert and --insecure need an https:// upstream",
            ),
        }
        for name, (args, expected) in cases.items():
            argv = ["--upstream", "http://127.0.0.1:9", "--out", str(tmp_path / "o.jsonl"), *args]
            done = subprocess.run(
                [sys.executable, "-m", "rolescope", "capture", *argv],
                capture_output=True,
                text=True,
                timeout=60,
            )
            output = " ".join((done.stdout + done.stderr).split())
            assert done.returncode == 2, (name, output)
            assert expected in output and "Traceback" not in output, (name, output)


def test_a_reply_the_upstream_breaks_off_breaks_off_for_the_client_too(
    asgi_server: Callable[..., Any], capture_proxy: ProxyFactory, tmp_path: Path
) -> None:
    upstream = asgi_server(foreign_app())
    proxy = capture_proxy(upstream.url)
    body = {"model": "fragile", "stream": True, "messages": [{"role": "user", "content": "Hello?"}]}
    seen: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.Client(timeout=10) as client,
        client.stream("POST", f"{proxy.url}/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        seen.extend(response.iter_lines())
    assert any('"The "' in line for line in seen)
    [record] = _records(proxy, tmp_path / "captured.jsonl")
    assert record.original.status == 200 and record.original.output_tokens == 1
    log = proxy.log()
    assert "1 broken streams" in log and "Traceback" not in log


def test_a_client_that_leaves_mid_stream_stops_the_relay(
    asgi_server: Callable[..., Any], capture_proxy: ProxyFactory, tmp_path: Path
) -> None:
    upstream = asgi_server(foreign_app())
    proxy = capture_proxy(upstream.url)
    body = {"model": "holmes", "stream": True, "messages": [{"role": "user", "content": "Hello?"}]}
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", f"{proxy.url}/v1/chat/completions", json=body) as response,
    ):
        for line in response.iter_lines():
            if '"The "' in line:
                break  # leaving the block closes the connection with the reply under way
    time.sleep(GAP_S * len(TOKENS))
    [record] = _records(proxy, tmp_path / "captured.jsonl")
    assert record.original.output_tokens < len(TOKENS)
    assert "1 clients gone" in proxy.log()


def test_bodies_stream_both_ways_and_a_connection_carries_requests_in_turn(
    asgi_server: Callable[..., Any], capture_proxy: ProxyFactory, tmp_path: Path
) -> None:
    upstream = asgi_server(foreign_app())
    proxy = capture_proxy(upstream.url)
    pieces = [bytes([n]) * 300_000 for n in range(8)]  # larger than the proxy holds before it stops reading

    def upload() -> Iterator[bytes]:
        yield from pieces

    with httpx.Client(timeout=30) as client:
        echoed = client.post(f"{proxy.url}/echo-body", content=upload()).json()
        head = client.head(f"{proxy.url}/echo-headers")
    whole = b"".join(pieces)
    assert echoed["size"] == len(whole) and echoed["sha256"] == hashlib.sha256(whole).hexdigest()
    assert echoed["transfer-encoding"] == "chunked", "a body of unknown length lost its chunked framing"
    assert head.status_code == 200 and head.content == b""
    host, port = proxy.url.removeprefix("http://").rsplit(":", 1)
    body = json.dumps({"model": "holmes", "messages": [{"role": "user", "content": "Twice?"}]}).encode()
    one = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(one + one)  # pipelined: the second waits for the first reply
        received = b""
        while received.count(b"HTTP/1.1 200") < 2 or not received.endswith(b"}"):
            chunk = raw.recv(65536)
            assert chunk, received
            received += chunk
    assert received.count(b"Indeed.") == 2
    assert len(_records(proxy, tmp_path / "captured.jsonl")) == 2


def test_a_websocket_upgrade_is_refused_and_the_proxy_says_why(
    asgi_server: Callable[..., Any], capture_proxy: ProxyFactory
) -> None:
    proxy = capture_proxy(asgi_server(foreign_app()).url)
    host, port = proxy.url.removeprefix("http://").rsplit(":", 1)
    upgrade = (
        b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(upgrade)
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert b'"upgrade_refused"' in answer


def test_an_https_upstream_is_verified_with_the_ca_and_given_the_client_certificate(
    asgi_server: Callable[..., Any], capture_proxy: ProxyFactory, pki: Any, tmp_path: Path
) -> None:
    import ssl

    ca = pki.ca("upstream-ca")
    server = pki.issue("upstream", ca=ca, server=True)
    client_cert = pki.issue("proxy", ca=ca)
    upstream = asgi_server(
        foreign_app(),
        ssl_certfile=str(server.cert),
        ssl_keyfile=str(server.key),
        ssl_ca_certs=str(ca.cert),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    )
    url = upstream.url.replace("http://", "https://")
    tls_args = [
        "--ca",
        str(ca.cert),
        "--client-cert",
        str(client_cert.cert),
        "--client-key",
        str(client_cert.key),
    ]
    proxy = capture_proxy(url, *tls_args)
    untrusting = capture_proxy(
        url,
        "--client-cert",
        str(client_cert.cert),
        "--client-key",
        str(client_cert.key),
        out=tmp_path / "u.jsonl",
    )
    body = {"model": "holmes", "stream": True, "messages": [{"role": "user", "content": "Over TLS?"}]}
    with httpx.Client(timeout=10) as client:
        proxied = client.post(f"{proxy.url}/v1/chat/completions", json=body)
        refused = client.post(f"{untrusting.url}/v1/chat/completions", json=body)
    assert proxied.status_code == 200 and "Indeed." in proxied.text
    assert refused.status_code == 502 and "CERTIFICATE_VERIFY_FAILED" in refused.json()["error"]["message"]
    [record] = _records(proxy, tmp_path / "captured.jsonl")
    assert record.message == "Over TLS?" and record.original.output_tokens == len(TOKENS)
