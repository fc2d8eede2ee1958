"""The server's SSL contexts as uvicorn builds them, remembered so a reload of the TLS files can reach them.

A context cannot forget a CA it has loaded (OpenSSL's certificate store only
grows), so a reload does not patch the context the listening socket holds.
It builds a whole new one from the same recipe (uvicorn's own factory: the
files, client verification, ciphers, ALPN) and the live context's SNI callback,
which OpenSSL calls early in every handshake whether or not the client sent a
server name, moves each new connection onto it. The switched connection then
takes its certificate and its client-CA store from the new context; connections
already open keep the context they were made with.

Kept to the standard library: with `--workers N` uvicorn pickles its config, this
factory included, into each worker, which imports this module before it answers
the supervisor's first health check (5 s); certificate parsing is imported only
when the files are checked.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

BuildContext = Callable[[], ssl.SSLContext]


class LiveContext:
    """One listening socket's SSL context, the files it came from, and the context new handshakes use."""

    def __init__(self, build: BuildContext, cert: Path, key: Path, client_ca: Path | None) -> None:
        self.cert = cert
        self.key = key
        self.client_ca = client_ca
        self._build = build
        self.listening = build()
        self.current = self.listening
        self.listening.sni_callback = self._switch

    def _switch(self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: Any) -> None:
        current = self.current
        if current is not self.listening:
            connection.context = current

    def rebuild(self) -> None:
        """Read the files again into a new context that every later handshake uses.

        Raises OSError or ssl.SSLError (and changes nothing) when they cannot be loaded.
        """
        self.current = self._build()


def _configured(default_factory: BuildContext) -> ssl.SSLContext:
    context = default_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


_live: list[LiveContext] = []
_live_lock = threading.Lock()


def server_context_factory(config: Any, default_factory: BuildContext) -> ssl.SSLContext:
    """uvicorn's context (files, client CA, ALPN), TLS 1.2 at least, remembered for reloads."""
    ca = Path(config.ssl_ca_certs) if config.ssl_ca_certs else None
    live = LiveContext(
        lambda: _configured(default_factory), Path(config.ssl_certfile), Path(config.ssl_keyfile), ca
    )
    with _live_lock:
        _live.append(live)
    return live.listening


def live_contexts() -> list[LiveContext]:
    with _live_lock:
        return list(_live)


def forget_server_contexts() -> None:
    """Drop the remembered contexts (so a later server in this process starts clean)."""
    with _live_lock:
        _live.clear()
