"""A role service that is not rolescope: Starlette on uvicorn, with timing known in advance.

It speaks OpenAI's `/v1/chat/completions` (and `/v1/models`), a seed-chat
shape (`{"message", "session_id"}` in, SSE out) and a JSON shape of its own.
Every answer is TOKENS tokens: the first after TTFT_S, the rest ITL_S apart,
so the client's figures have a truth to be held to. A message holding
"truncate" ends the stream early; one holding "explode" sends an error chunk.
Every request body is kept, so tests can read what the client really sent.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from rolescope.loadtests.traffic_format import OriginalAnswer, TrafficRecord, write_traffic

TTFT_S = 0.150
ITL_S = 0.020
TOKENS = 12
MODEL = "known-timing"
API_KEY = "sk-test-0123456789"


def reply_words(message: str) -> list[str]:
    """The answer to `message`: TOKENS words derived from it, so a history can be checked."""
    seed = sum(map(ord, message)) % 97
    return [f"w{seed}-{index} " for index in range(TOKENS)]


def _sse(payload: Any) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


@dataclass
class ForeignService:
    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    # Per streamed completion: the last user message, when the request arrived, when each token left.
    sent: list[tuple[str, float, list[float]]] = field(default_factory=list)
    ttft_s: float = TTFT_S
    itl_s: float = ITL_S
    tokens: int = TOKENS
    model: str = MODEL
    api_key: str = API_KEY
    cert: Path | None = None  # the self-signed certificate, when served over TLS

    @staticmethod
    def reply(message: str) -> str:
        return "".join(reply_words(message))


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


async def _openai_events(message: str, include_usage: bool, times: list[float]) -> AsyncIterator[bytes]:
    # Role-only, empty and reasoning deltas come first, at once: none of them is the first token.
    yield _sse(_chunk({"role": "assistant", "content": ""}))
    yield _sse(_chunk({"reasoning_content": "thinking it over"}))
    await asyncio.sleep(TTFT_S)
    for index, word in enumerate(reply_words(message)):
        if index:
            await asyncio.sleep(ITL_S)
        times.append(time.time())
        yield _sse(_chunk({"content": word}))
        if "truncate" in message and index == 3:
            return
    if "explode" in message:
        yield _sse({"error": {"message": "backend exploded", "type": "server_error"}})
        yield _sse("[DONE]")
        return
    yield _sse(_chunk({}, "stop"))
    if include_usage:
        usage = {"prompt_tokens": 7, "completion_tokens": TOKENS, "total_tokens": 7 + TOKENS}
        yield _sse({"object": "chat.completion.chunk", "choices": [], "usage": usage})
    yield _sse("[DONE]")


async def _seed_events(message: str) -> AsyncIterator[bytes]:
    await asyncio.sleep(TTFT_S)
    for index, word in enumerate(reply_words(message)):
        if index:
            await asyncio.sleep(ITL_S)
        yield _sse({"content": word})
        if "truncate" in message and index == 3:
            return
    yield _sse({"done": True, "usage": {"completion_tokens": TOKENS}})


def foreign_app(service: ForeignService) -> Starlette:
    async def completions(request: Request) -> Response:
        received = time.time()
        body = await request.json()
        service.bodies.append(body)
        service.headers.append(dict(request.headers))
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return JSONResponse({"error": {"message": "bad key", "code": "invalid_api_key"}}, status_code=401)
        message = body["messages"][-1]["content"]
        if body.get("stream"):
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            times: list[float] = []
            service.sent.append((message, received, times))
            return StreamingResponse(_openai_events(message, include, times), media_type="text/event-stream")
        await asyncio.sleep(TTFT_S)
        return JSONResponse(
            {
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(reply_words(message))},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 7, "completion_tokens": TOKENS, "total_tokens": 7 + TOKENS},
            }
        )

    async def models(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
        return JSONResponse({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def seed_chat(request: Request) -> Response:
        body = await request.json()
        service.bodies.append(body)
        return StreamingResponse(_seed_events(body["message"]), media_type="text/event-stream")

    async def ask(request: Request) -> Response:
        body = await request.json()
        service.bodies.append(body)
        if "explode" in body["query"]["text"]:
            return JSONResponse({"failure": "the oracle is silent"})
        words = reply_words(body["query"]["text"])
        return JSONResponse({"answer": {"text": "".join(words)}, "meta": {"tokens": len(words)}})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/api/chat", seed_chat, methods=["POST"]),
            Route("/ask", ask, methods=["POST"]),
        ]
    )


@pytest.fixture
def foreign_service(asgi_server: Callable[..., Any]) -> ForeignService:
    service = ForeignService(url="")
    service.url = asgi_server(foreign_app(service)).url
    return service


@pytest.fixture
def tls_foreign_service(tmp_path: Path, asgi_server: Callable[..., Any]) -> ForeignService:
    """The same foreign service over TLS, with a self-signed certificate for 127.0.0.1 (its own CA)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    service = ForeignService(url="", cert=cert)
    server = asgi_server(foreign_app(service), ssl_keyfile=str(key), ssl_certfile=str(cert))
    service.url = server.url.replace("http://", "https://")
    return service


TrafficWriter = Callable[..., Path]


@pytest.fixture
def traffic_file(tmp_path: Path) -> TrafficWriter:
    """`traffic_file({"s1": ["hi", "and then?"]}, stream=False)`: a traffic file of those sessions."""
    return lambda sessions, **options: write_sessions(tmp_path / "traffic.jsonl", sessions, **options)


def write_sessions(
    path: Path, sessions: dict[str, list[str]], *, role: str = "sherlock", stream: bool = True
) -> Path:
    """A traffic file: one session per key, its messages as turns one second apart."""
    records = [
        TrafficRecord(
            arrival=1000.0 + index + 0.1 * number,
            session=session,
            turn=index,
            role=role,
            message=message,
            stream=stream,
            original=OriginalAnswer(status=200, latency_s=0.5, output_tokens=TOKENS),
        )
        for number, (session, messages) in enumerate(sessions.items())
        for index, message in enumerate(messages)
    ]
    with path.open("w", encoding="utf-8") as out:
        write_traffic(records, out)
    return path
