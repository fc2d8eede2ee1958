"""A stand-in OTLP/HTTP collector on 127.0.0.1 that can be up, down or a black hole.

- `up`: answers every POST with 200 and keeps the raw request bodies (protobuf bytes),
- `down`: nothing listens on the port (connection refused),
- `blackhole`: accepts connections and reads requests but never answers.

The port stays the same across modes, so the service under test keeps one endpoint.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Literal

Mode = Literal["up", "down", "blackhole"]
_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"


class OtlpSink:
    def __init__(self) -> None:
        self.mode: Mode = "down"
        self.port = 0
        self.bodies: list[bytes] = []
        self.requests = 0
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopped = False

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_mode(self, mode: Mode) -> None:
        with self._changed:
            self.mode = mode
            self._changed.notify_all()
        if mode == "down":
            self._close_listener()
        elif self._listener is None:
            self._open_listener()

    def start(self, mode: Mode = "up") -> OtlpSink:
        self._open_listener()
        self.set_mode(mode)
        return self

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        self._close_listener()

    def received(self) -> bytes:
        with self._lock:
            return b"".join(self.bodies)

    def _open_listener(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(30)
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(buffer) < length:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                body, buffer = buffer[:length], buffer[length:]
                with self._changed:
                    self.requests += 1
                    while self.mode == "blackhole" and not self._stopped:
                        self._changed.wait(0.5)
                    if self.mode != "up" or self._stopped:
                        return
                    self.bodies.append(body)
                connection.sendall(_OK)
        except OSError:
            return
        finally:
            connection.close()
