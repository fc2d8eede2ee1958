"""The server's SSL contexts as uvicorn builds them, remembered so a certificate rotation can reach them.

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

# Each live context with the certificate, key and client CA files it was built from.
LiveContext = tuple[ssl.SSLContext, Path, Path, Path | None]
_live: list[LiveContext] = []
_live_lock = threading.Lock()


def server_context_factory(config: Any, default_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's context (files, client CA, ALPN), TLS 1.2 at least, remembered for rotation."""
    context = default_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    ca = Path(config.ssl_ca_certs) if config.ssl_ca_certs else None
    with _live_lock:
        _live.append((context, Path(config.ssl_certfile), Path(config.ssl_keyfile), ca))
    return context


def live_contexts() -> list[LiveContext]:
    with _live_lock:
        return list(_live)


def forget_server_contexts() -> None:
    """Drop the remembered contexts (so a later server in this process starts clean)."""
    with _live_lock:
        _live.clear()
