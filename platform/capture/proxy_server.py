"""Puts the capturing proxy together and serves it: uvicorn on uvloop, one shared upstream client.

Start-up order: the listening socket is bound first (so a busy port is a clear
error, and `:0` picks a free port the banner names), then the capture sink's
writer thread, then the upstream client. SIGINT and SIGTERM stop accepting,
let replies under way finish (up to a grace period), close the upstream
client, and only then flush and close the capture file.
"""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

from rolescope.capture.observer import CaptureObserver
from rolescope.capture.protocols.base import ChatProtocol
from rolescope.capture.protocols.openai_api import OpenAIProtocol
from rolescope.capture.protocols.rolescope_api import RolescopeProtocol
from rolescope.capture.protocols.template_api import load_template
from rolescope.capture.proxy_app import CaptureProxy, UpstreamBrokeOff
from rolescope.capture.proxy_stats import Progress, ProxyStats
from rolescope.errors import ConfigError
from rolescope.loadtests.redaction import KEY_ENV, KEY_FILE_ENV, load_key

logger = logging.getLogger("rolescope.capture")


@dataclass(frozen=True, slots=True)
class ProxyOptions:
    host: str
    port: int
    upstream: str
    out: Path
    sample: float = 1.0
    template: Path | None = None
    key_file: Path | None = None
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 300.0
    max_connections: int = 1000
    max_queue: int = 10_000
    progress_every: int = 100
    grace_s: int = 30


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--listen {text!r}: expected HOST:PORT such as 127.0.0.1:8081 (port 0 picks one)")
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_upstream(text: str) -> httpx.URL:
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise ConfigError(f"--upstream {text!r}: not a URL ({exc})") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(
            f"--upstream {text!r}: expected an http:// or https:// URL such as http://127.0.0.1:8080"
        )
    return url


def protocols_for(template: Path | None) -> list[ChatProtocol]:
    """The template first (its route may shadow a built-in one), then rolescope's API and OpenAI's."""
    found: list[ChatProtocol] = [RolescopeProtocol(), OpenAIProtocol()]
    if template is not None:
        found.insert(0, load_template(template))
    return found


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--listen {host}:{port}: cannot listen there ({exc.strerror})") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def upstream_client(options: ProxyOptions) -> httpx.AsyncClient:
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(options.read_timeout_s, connect=options.connect_timeout_s, pool=None),
        limits=httpx.Limits(max_connections=options.max_connections, max_keepalive_connections=200),
        follow_redirects=False,
        trust_env=False,  # the proxy's own environment (HTTP_PROXY, …) must not reroute relayed traffic
    )
    # httpx adds Accept-Encoding, User-Agent, … to every request; a relay must send only the client's.
    for name in list(client.headers.keys()):
        del client.headers[name]
    return client


class _QuietBrokenReplies(logging.Filter):
    """A reply the upstream broke off is logged once by the proxy; uvicorn need not add a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], UpstreamBrokeOff))


def serve(options: ProxyOptions, say: Callable[[str], None]) -> ProxyStats:
    """Run until SIGINT or SIGTERM; returns the final counts."""
    import uvicorn
    import uvloop

    upstream = parse_upstream(options.upstream)
    if not 0 <= options.sample <= 1:
        raise ConfigError(f"--sample {options.sample}: expected a share between 0 and 1")
    protocols = protocols_for(options.template)
    key, ephemeral = load_key(options.key_file)
    if ephemeral:
        say(f"note: no ${KEY_ENV} or ${KEY_FILE_ENV}; pseudonyms use a random key, unlinkable across runs")
    try:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.open("a", encoding="utf-8").close()
    except OSError as exc:
        raise ConfigError(f"--out {options.out}: cannot write there ({exc.strerror})") from exc
    sock = bind(options.host, options.port)
    stats = ProxyStats()
    capture = CaptureObserver(options.out, options.sample, key, stats.count_drop, max_queue=options.max_queue)
    progress = Progress(
        stats, lambda: (capture.sink.written, capture.sink.dropped), say, options.progress_every
    )
    logging.getLogger("uvicorn.error").addFilter(_QuietBrokenReplies())
    host, port = sock.getsockname()[:2]
    say(
        f"capture proxy listening on http://{host}:{port} → {upstream}; "
        f"writing {options.out} (sample {options.sample:g})"
    )
    stopping: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def note(sig: int, frame: FrameType | None) -> None:
        stopping.append(sig)  # uvicorn hands the signal back after its own graceful shutdown

    for sig in previous:
        signal.signal(sig, note)

    async def run() -> None:
        async with upstream_client(options) as client:
            proxy = CaptureProxy(upstream, client, protocols, capture, stats, progress)
            config = uvicorn.Config(
                proxy,
                lifespan="off",
                http="httptools",
                loop="none",
                log_level="warning",
                access_log=False,
                proxy_headers=False,  # the proxy adds X-Forwarded-For itself; clients' headers are relayed
                server_header=False,  # the upstream's Server and Date headers are relayed instead
                date_header=False,
                timeout_graceful_shutdown=options.grace_s,
            )
            await uvicorn.Server(config).serve(sockets=[sock])

    capture.start()
    try:
        uvloop.run(run())
    finally:
        capture.close()
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        progress.final()
    return stats
