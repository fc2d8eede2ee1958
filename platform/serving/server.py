"""Runs the role service under uvicorn and prints the start-up banner once it really listens.

The banner is a contract (scripts and the launcher read it):
    ✅ Loaded role: sherlock (v1.2)        (one line per role)
    ✅ Memory backend: SQLite (./data/sherlock.db)
    🔒 TLS: server.pem, client certificates required (ca.pem)   (only with --tls-cert)
    🚀 HTTP server listening on :8080
The last line is printed only after the socket is bound, with the actual port
(so `--port 0` reports the free port it got).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

import uvicorn

from rolescope.errors import EnvironmentProblem
from rolescope.roles import load_roles
from rolescope.serving.app import create_app
from rolescope.serving.heap import freeze_startup_heap
from rolescope.serving.supervisor import run_workers
from rolescope.serving.tls import TlsFiles, require_valid_tls, uvicorn_tls_options
from rolescope.serving.tls_protocols import protocol_options
from rolescope.serving.wiring import build_store
from rolescope.settings import FAULT_KEYS, Settings

Say = Callable[[str], None]
# What each `--workers` child imports and calls to build its own app.
APP_FACTORY = "rolescope.serving.app:create_app_from_env"


def _say(line: str) -> None:
    print(line, flush=True)


def settings_as_env(settings: Settings) -> dict[str, str]:
    """The settings as ROLESCOPE_* variables, so worker processes rebuild exactly the same ones."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(exclude={"faults"}).items():
        if value is not None:
            env[f"ROLESCOPE_{name.upper()}"] = str(value)
    for key in FAULT_KEYS:
        env[f"ROLESCOPE_FAULT_{key.upper()}"] = str(getattr(settings.faults, key))
    return env


def _tls_line(files: TlsFiles) -> str:
    clients = (
        f"client certificates required ({files.client_ca})" if files.client_ca is not None
        else "no client certificates"
    )
    return f"🔒 TLS: {files.cert}, {clients}"


def _banner_before_listen(settings: Settings, say: Say, tls: TlsFiles | None = None) -> None:
    roles = load_roles(settings.roles_path)
    for role in roles.all_versions():
        say(f"✅ Loaded role: {role.name} (v{role.version})")
    store = build_store(settings, next(iter(roles)))
    say(f"✅ Memory backend: {store.backend_name} ({store.location})")
    if tls is not None:
        say(_tls_line(tls))
    if settings.faults.active:
        planted = ", ".join(
            f"{k}={getattr(settings.faults, k)}" for k in FAULT_KEYS if getattr(settings.faults, k)
        )
        say(f"⚠️  Planted faults: {planted}")


async def _serve_until_stopped(server: uvicorn.Server, say: Say) -> None:
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    if server.started:
        freeze_startup_heap()
        port = server.servers[0].sockets[0].getsockname()[1] if server.servers else server.config.port
        say(f"🚀 HTTP server listening on :{port}")
    await task


def serve_forever(server: uvicorn.Server, say: Say) -> None:
    """Serve until stopped, on the event loop `uvicorn.run` would pick.

    That is uvloop when installed (as for --workers N); a bare asyncio.run would quietly serve
    a single process on the slower standard loop.
    """
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(_serve_until_stopped(server, say))


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def run_server(settings: Settings, *, say: Say = _say) -> None:
    """Validate, print the banner, serve until SIGINT/SIGTERM. Raises ConfigError on a bad role."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        "timeout_graceful_shutdown": settings.shutdown_timeout_s,
        "timeout_keep_alive": settings.keep_alive_s,
        "lifespan": "on",
        # A WebSocket frame is held to the HTTP body limit: larger ones are closed with 1009.
        "ws_max_size": settings.max_body_bytes,
        "ws_ping_interval": settings.ws_ping_interval_s or None,
        "ws_ping_timeout": settings.ws_ping_interval_s or None,
        # Token frames are a few dozen bytes: deflate saves little on them and each connection
        # keeps its zlib state; a deployment holding many idle WebSockets may turn it off.
        "ws_per_message_deflate": settings.ws_compression,
        # JSON logs: uvicorn's loggers propagate to the root handler rolescope installs.
        "log_config": None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
    }
    tls = require_valid_tls(settings)
    if tls is not None:
        common.update(uvicorn_tls_options(tls))
        # The protocols uvicorn would pick, subclassed to hand the client certificate to the app.
        common.update(protocol_options(common.get("http", "auto"), common.get("ws", "auto")))
    if settings.workers > 1:
        if settings.port == 0:
            # uvicorn's supervisor binds before forking and never reports the port it got,
            # so pick one here: the banner must name the real port for `--port 0` callers.
            settings = settings.model_copy(update={"port": _free_port(settings.host)})
            common["port"] = settings.port
        _banner_before_listen(settings, say, tls)
        os.environ.update(settings_as_env(settings))
        say(f"🚀 HTTP server listening on :{settings.port}")
        with contextlib.suppress(KeyboardInterrupt):
            run_workers(APP_FACTORY, workers=settings.workers, **common)
        return
    app = create_app(settings)
    _banner_before_listen(settings, say, tls)
    server = uvicorn.Server(uvicorn.Config(app, **common))
    try:
        serve_forever(server, say)
    except KeyboardInterrupt:
        # uvicorn shuts down gracefully, then re-raises the signal it caught; Ctrl-C is a normal stop.
        pass
    except SystemExit as exc:
        # uvicorn exits with status 1 when it cannot bind or the lifespan fails to start.
        if exc.code not in (0, None):
            raise EnvironmentProblem(
                f"the service could not start on {settings.host}:{settings.port} (port in use, or session "
                "memory could not be opened); see the log lines above"
            ) from exc
    sys.stdout.flush()
