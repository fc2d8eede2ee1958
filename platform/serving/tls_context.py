"""The server's SSL contexts as uvicorn builds them, remembered so a reload of the TLS files can reach them.

A context cannot forget a CA it has loaded (OpenSSL's certificate store only
grows), so a reload does not patch the context the listening socket holds.
It builds a whole new one from the same recipe (uvicorn's own factory: the
files, client verification, ciphers, ALPN) and the live context's SNI callback,
which OpenSSL calls early in every handshake whether or not the client sent a
server name, moves each new connection onto it. The switched connection then
takes its certificate and its client-CA store from the new context; connections
already open keep the context they were made with.

A resumed TLS session is not verified again (OpenSSL decides on resumption
before that callback runs), so after the client CA bundle has changed, a
connection that resumes a session made before the change is closed right after
its handshake (`resumes_session_from_before_ca_change`); the client's next
connection does a full handshake against the new bundle.

Kept to the standard library: with `--workers N` uvicorn pickles its config, this
factory included, into each worker, which imports this module before it answers
the supervisor's first health check (5 s); certificate parsing is imported only
when the files are checked.
"""

from __future__ import annotations

import ssl
import threading
import time
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
        self._ca_pem = self._read_ca()
        self.ca_changed_at: float | None = None  # wall-clock time of the last change of the bundle

    def _read_ca(self) -> bytes | None:
        if self.client_ca is None:
            return None
        try:
            return self.client_ca.read_bytes()
        except OSError:
            return None

    def _switch(self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: Any) -> None:
        current = self.current
        if current is not self.listening:
            connection.context = current

    def rebuild(self) -> None:
        """Read the files again into a new context that every later handshake uses.

        Raises OSError or ssl.SSLError (and changes nothing) when they cannot be loaded.
        """
        ca_pem = self._read_ca()
        self.current = self._build()
        if ca_pem != self._ca_pem:
            self._ca_pem, self.ca_changed_at = ca_pem, time.time()


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


def resumes_session_from_before_ca_change(ssl_object: ssl.SSLObject) -> bool:
    """Whether this connection resumed a TLS session made before the client CA bundle last changed."""
    if not ssl_object.session_reused or ssl_object.session is None:
        return False
    changed = [live.ca_changed_at for live in live_contexts() if live.ca_changed_at is not None]
    # Session times have whole seconds: one made in the second of the change counts as before it.
    return bool(changed) and ssl_object.session.time <= int(max(changed))


def live_contexts() -> list[LiveContext]:
    with _live_lock:
        return list(_live)


def forget_server_contexts() -> None:
    """Drop the remembered contexts (so a later server in this process starts clean)."""
    with _live_lock:
        _live.clear()
