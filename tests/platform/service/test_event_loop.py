"""The single-process server runs where `uvicorn.run` would: on uvloop, with the start-up heap frozen."""

from __future__ import annotations

import subprocess
import sys

# A bare ASGI app: the point is the server's loop and heap, not the role service.
SCRIPT = """
import asyncio, gc, uvicorn
from rolescope.serving.server import serve_forever

async def app(scope, receive, send):
    assert scope["type"] == "lifespan"
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return

server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning"))

def say(line):
    loop = type(asyncio.get_running_loop())
    print(line, f"loop={loop.__module__}", f"frozen={gc.get_freeze_count()}", flush=True)
    server.should_exit = True

serve_forever(server, say)
"""


def test_single_process_server_uses_uvloop_and_freezes_the_startup_heap() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("🚀 HTTP server listening on :"), line
    assert "loop=uvloop" in line, line
    frozen = int(line.rsplit("frozen=", 1)[1])
    # Importing uvicorn alone leaves tens of thousands of objects; all of them must be frozen.
    assert frozen > 10_000, line
