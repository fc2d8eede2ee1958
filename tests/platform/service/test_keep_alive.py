"""An idle keep-alive connection outlives a proxy's idle timeout, so the proxy closes it first."""

from __future__ import annotations

import http.client
import time

from rolescope.serving.launcher import ServiceProcess


def test_an_idle_connection_is_kept_longer_than_uvicorns_five_seconds(service: ServiceProcess) -> None:
    host, port = service.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", "/healthz")
        first = conn.getresponse()
        first.read()
        assert first.status == 200
        sock = conn.sock
        time.sleep(6.5)  # uvicorn's own default (5 s) would have closed it by now
        # A closed connection would raise RemoteDisconnected here, as a proxy would see a 502.
        conn.request("GET", "/healthz")
        second = conn.getresponse()
        second.read()
        assert second.status == 200
        assert conn.sock is sock  # the same connection, not a new one
    finally:
        conn.close()
