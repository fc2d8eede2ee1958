"""The mirror's HTTP/1.1 client against real servers on 127.0.0.1: a uvicorn app, and raw sockets
that answer chunked, close idle connections, or never answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from rolescope.mirroring.http_client import MirrorHttpClient, MirrorTransportError

pytestmark = pytest.mark.anyio

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _echo(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({"echo": body, "path": request.url.path}, status_code=201)


def test_posts_json_and_reuses_one_connection_against_uvicorn(asgi_server: Callable[..., object]) -> None:
    server = asgi_server(Starlette(routes=[Route("/base/v1/chat", _echo, methods=["POST"])]))
    url = f"{server.url}/base"  # type: ignore[attr-defined]

    async def run() -> tuple[list[int], int]:
        client = MirrorHttpClient(url)
        replies = [await client.post_json("/v1/chat", json.dumps({"n": n}).encode()) for n in range(5)]
        assert [json.loads(r.body)["echo"]["n"] for r in replies] == list(range(5))
        idle = len(client._idle)
        await client.aclose()
        return [r.status for r in replies], idle

    statuses, idle = asyncio.run(run())
    assert statuses == [201] * 5 and idle == 1


async def _raw_server(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    return await reader.readexactly(length)


async def test_a_chunked_reply_is_read_whole_and_a_connection_closed_while_idle_is_replaced() -> None:
    connections = 0

    async def once_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        body = await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + b"%x\r\n%s\r\n" % (len(body), body) + b"3\r\n!!!\r\n0\r\n\r\n")
        await writer.drain()
        writer.close()  # keep-alive announced, then closed: the next request must not fail

    server, url = await _raw_server(once_then_close)
    client = MirrorHttpClient(url)
    try:
        first = await client.post_json("/v1/chat", b'{"a":1}')
        await asyncio.sleep(0.05)
        second = await client.post_json("/v1/chat", b'{"b":2}')
    finally:
        await client.aclose()
        server.close()
    assert (first.status, first.body) == (200, b'{"a":1}!!!')
    assert (second.status, second.body) == (200, b'{"b":2}!!!')
    assert connections == 2


async def test_nothing_listening_and_a_broken_reply_are_transport_errors(free_port: int) -> None:
    with pytest.raises(MirrorTransportError, match="cannot connect"):
        await MirrorHttpClient(f"http://127.0.0.1:{free_port}").post_json("/v1/chat", b"{}")

    async def half_reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
        await writer.drain()
        writer.close()

    server, url = await _raw_server(half_reply)
    try:
        with pytest.raises(MirrorTransportError, match="no complete reply"):
            await MirrorHttpClient(url).post_json("/v1/chat", b"{}")
    finally:
        server.close()


async def test_a_request_cancelled_by_its_timeout_closes_its_connection() -> None:
    async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(30)

    server, url = await _raw_server(never_answers)
    client = MirrorHttpClient(url)
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await client.post_json("/v1/chat", b"{}")
        assert client._idle == []  # a half-read connection is never reused
    finally:
        server.close()
