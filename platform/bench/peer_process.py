"""Child processes of the peer benchmark: free loopback ports, a server started and awaited, bounded runs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

from rolescope.errors import EnvironmentProblem


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A server child process in its own process group (so its workers stop with it)."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_server(
    argv: Sequence[str],
    url: str,
    ready_path: str,
    log_path: Path,
    env: Mapping[str, str],
    timeout_s: float = 120,
) -> ServerProcess:
    """Start `argv`, wait until `GET url+ready_path` answers 200; EnvironmentProblem with the log if not."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            start_new_session=True,
        )
    server = ServerProcess(process, url, log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EnvironmentProblem(
                f"`{' '.join(argv)}` exited with status {process.returncode}:\n{server.log_tail()}"
            )
        try:
            if httpx.get(url + ready_path, timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise EnvironmentProblem(
        f"`{' '.join(argv)}` was not ready within {timeout_s:.0f} s:\n{server.log_tail()}"
    )


def run_bounded(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str], timeout_s: float, cwd: Path | None = None
) -> int:
    """Run a peer to completion with its output in `log_path`; killed (group and all) past `timeout_s`."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            cwd=cwd,
            start_new_session=True,
        )
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            raise RuntimeError(
                f"`{' '.join(argv)}` did not finish within {timeout_s:.0f} s; log: {log_path}"
            ) from None
