"""The floor the service is measured against: a bare FastAPI `POST /v1/chat` returning the same JSON.

It validates a request body with a pydantic model and answers the same 430-byte
object the service answers, with nothing else (no session, persona, telemetry
or middleware), so `service / bare` is what rolescope's exchange costs beyond
FastAPI and uvicorn. Run under the same uvicorn settings as `rolescope serve`:

    python -m rolescope.bench.bare_app PORT
"""

from __future__ import annotations

import sys

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()

_ANSWER = {
    "role": "sherlock",
    "content": (
        "Observe, if you will, the heart of it is simple: stole and pearl rewards the theatrical. "
        "Being impatient with the obvious, I look at stole and pearl and see more than most would. "
        "Pray, give me more data."
    ),
    "timestamp": "2026-11-29T22:02:03.843Z",
    "confidence_score": 0.824,
    "session_id": "dNlJ3Vi-tvvQwW5msmoIcg",
    "trace_id": "111dd72ec65644a27227c6299e036b81",
    "usage": {"input_tokens": 70, "output_tokens": 46},
}


class ChatBody(BaseModel):
    message: str


@app.post("/v1/chat")
async def chat(body: ChatBody) -> dict[str, object]:
    return _ANSWER


def main(port: int) -> None:
    import uvicorn

    # The settings `rolescope serve` runs with by default (loop auto = uvloop, no access log).
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on")


if __name__ == "__main__":
    main(int(sys.argv[1]))
