"""Puts the capturing proxy together and serves it: asyncio on uvloop, one pool of upstream connections.

Start-up order: the listening socket is bound first (so a busy port is a clear
error, and `:0` picks a free port the banner names), then the capture sink's
writer thread, then the server. SIGINT and SIGTERM stop accepting, close idle
connections, let replies under way finish (up to a grace period), close the
upstream connections, and only then flush and close the capture file.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from rolescope.capture.observer import CaptureObserver
from rolescope.capture.protocols.base import ChatProtocol
from rolescope.capture.protocols.openai_api import OpenAIProtocol
from rolescope.capture.protocols.rolescope_api import RolescopeProtocol
from rolescope.capture.protocols.template_api import load_template
from rolescope.capture.proxy_app import CaptureProxy, Upstream
from rolescope.capture.proxy_client import ClientConnection, close_idle
from rolescope.capture.proxy_stats import Progress, ProxyStats
from rolescope.capture.proxy_upstream import UpstreamPool
from rolescope.client_tls import ClientTls
from rolescope.errors import ConfigError
from rolescope.loadtests.redaction import KEY_ENV, KEY_FILE_ENV, load_key


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
    tls: ClientTls | None = None
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


def upstream_of(url: httpx.URL, options: ProxyOptions) -> tuple[Upstream, UpstreamPool]:
    """Where to connect, what `Host` says there, and the TLS context for an https:// upstream."""
    tls = options.tls
    problems = tls.problems() if tls is not None else []
    if tls is not None and tls.configured and url.scheme != "https":
        problems.append(f"--upstream {url}: --ca, --client-cert and --insecure need an https:// upstream")
    if problems:
        raise ConfigError("; ".join(problems))
    context = (tls or ClientTls()).ssl_context() if url.scheme == "https" else None
    port = url.port or (443 if url.scheme == "https" else 80)
    prefix = url.raw_path.split(b"?", 1)[0].rstrip(b"/")
    pool = UpstreamPool(url.host, port, context, options.connect_timeout_s)
    return Upstream(str(url), url.netloc, prefix), pool


def serve(options: ProxyOptions, say: Callable[[str], None]) -> ProxyStats:
    """Run until SIGINT or SIGTERM; returns the final counts."""
    import uvloop

    url = parse_upstream(options.upstream)
    if not 0 <= options.sample <= 1:
        raise ConfigError(f"--sample {options.sample}: expected a share between 0 and 1")
    upstream, pool = upstream_of(url, options)
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
    proxy = CaptureProxy(upstream, pool, protocols, capture, stats, progress, options.read_timeout_s)
    host, port = sock.getsockname()[:2]
    say(
        f"capture proxy listening on http://{host}:{port} → {url}; "
        f"writing {options.out} (sample {options.sample:g})"
    )
    capture.start()
    try:
        uvloop.run(_run(proxy, pool, sock, options.grace_s))
    finally:
        capture.close()
        sock.close()
        progress.final()
    return stats


async def _run(proxy: CaptureProxy, pool: UpstreamPool, sock: socket.socket, grace_s: float) -> None:
    """Serve until SIGINT or SIGTERM, then let replies under way finish (up to `grace_s`)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    connections: set[ClientConnection] = set()
    server = await loop.create_server(lambda: ClientConnection(proxy.handle, connections), sock=sock)
    try:
        await stop.wait()
        server.close()
        close_idle(connections)
        deadline = loop.time() + grace_s
        while connections and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for connection in list(connections):
            if connection.transport is not None:
                connection.transport.abort()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        pool.close()
