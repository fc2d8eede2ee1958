"""Input limits: body size (413 before reading it all), message length, tokens, turns."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from rolescope.service.limits import (
    BodySizeLimitMiddleware,
    LimitExceeded,
    Limits,
    cap_output_tokens,
    check_message,
    check_turns,
)


async def echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


def test_message_turn_and_token_caps_raise_with_status_and_a_sentence() -> None:
    limits = Limits(max_message_chars=10, max_output_tokens=50, max_turns_per_session=4)
    check_message("x" * 10, limits)
    with pytest.raises(LimitExceeded) as too_long:
        check_message("x" * 11, limits)
    assert too_long.value.status == 413
    assert "11 characters; the limit is 10" in too_long.value.message
    check_turns(2, limits)
    with pytest.raises(LimitExceeded) as full:
        check_turns(4, limits)
    assert full.value.status == 422
    assert cap_output_tokens(None, limits) == 50
    assert cap_output_tokens(20, limits) == 20
    with pytest.raises(LimitExceeded) as tokens:
        cap_output_tokens(51, limits)
    assert tokens.value.status == 422


def test_bodies_within_the_limit_reach_the_app_whole(asgi_server) -> None:  # type: ignore[no-untyped-def]
    srv = asgi_server(BodySizeLimitMiddleware(echo_length, max_bytes=1000), lifespan="off")
    assert httpx.post(srv.url, content=b"a" * 1000, timeout=5).text == "1000"

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"b" * 100

    assert httpx.post(srv.url, content=chunks(), timeout=5).text == "1000"


def test_an_oversize_declared_body_gets_413_without_being_read(asgi_server) -> None:  # type: ignore[no-untyped-def]
    reasons: list[str] = []
    srv = asgi_server(BodySizeLimitMiddleware(echo_length, 1000, on_reject=reasons.append), lifespan="off")
    # Declare 10 MB and send only the headers: the answer must come without the body.
    address = urlsplit(srv.url)
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 10000000\r\n\r\n")
        reply = sock.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 413")
    assert "payload_too_large" in reply
    assert reasons == ["too_large"]


def test_an_oversize_chunked_body_gets_413(asgi_server) -> None:  # type: ignore[no-untyped-def]
    srv = asgi_server(BodySizeLimitMiddleware(echo_length, max_bytes=1000), lifespan="off")

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(50):
            yield b"c" * 100

    response = httpx.post(srv.url, content=chunks(), timeout=5)
    assert response.status_code == 413
    assert "limit of 1000 bytes" in response.json()["error"]["message"]
