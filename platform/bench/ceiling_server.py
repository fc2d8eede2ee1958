"""A streaming chat server whose token gaps are known: it records when it actually sent every token.

    python -m rolescope.bench.ceiling_server --port PORT --itl-ms 5 --ttft-ms 5 --tokens 50

`POST /v1/chat/completions` (stream) answers `--tokens` one-word chunks, the
first after `--ttft-ms`, then one every `--itl-ms`, and a last chunk with
`usage`. Asked sleeps drift on a loaded machine, so the truth is not the
asked gap but the send times written down: `GET /record` gives, per finished
stream, its first and last content send time (perf_counter seconds) and its
token count; `POST /reset` forgets them, so every measuring tool gets its
own record.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MODEL = "ceiling"


def build_app(ttft_s: float, itl_s: float, tokens: int) -> Starlette:
    streams: list[tuple[float, float, int]] = []

    async def chunks(max_tokens: int) -> AsyncIterator[bytes]:
        count = max(1, min(tokens, max_tokens))
        base = {"id": "chatcmpl-ceiling", "object": "chat.completion.chunk", "created": int(time.time())}
        await asyncio.sleep(ttft_s)
        first = last = 0.0
        for index in range(count):
            if index:
                await asyncio.sleep(itl_s)
            delta = {"role": "assistant", "content": "tok "} if index == 0 else {"content": "tok "}
            choice = {"index": 0, "delta": delta, "finish_reason": None}
            payload = json.dumps({**base, "model": MODEL, "choices": [choice]})
            last = time.perf_counter()
            first = first or last
            yield f"data: {payload}\n\n".encode()
        streams.append((first, last, count))
        usage = {"prompt_tokens": 1, "completion_tokens": count, "total_tokens": count + 1}
        done = {"index": 0, "delta": {}, "finish_reason": "stop"}
        yield f"data: {json.dumps({**base, 'model': MODEL, 'choices': [done], 'usage': usage})}\n\n".encode()
        yield b"data: [DONE]\n\n"

    async def completions(request: Request) -> Response:
        body = await request.json()
        max_tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or tokens)
        return StreamingResponse(chunks(max_tokens), media_type="text/event-stream")

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def models(_: Request) -> Response:
        return JSONResponse(
            {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "bench"}]}
        )

    async def record(_: Request) -> Response:
        return JSONResponse({"streams": streams})

    async def reset(_: Request) -> Response:
        streams.clear()
        return JSONResponse({"streams": 0})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/v1/models", models),
            Route("/health", health),
            Route("/record", record),
            Route("/reset", reset, methods=["POST"]),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rolescope.bench.ceiling_server", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft-ms", type=float, default=5.0)
    parser.add_argument("--itl-ms", type=float, default=5.0)
    parser.add_argument("--tokens", type=int, default=50)
    args = parser.parse_args(argv)
    app = build_app(args.ttft_ms / 1000, args.itl_ms / 1000, args.tokens)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
