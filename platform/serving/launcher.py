"""Start `rolescope serve` as a child process and wait until it is ready: for tests, tune, load and profile.

The service picks its own free port (`--port 0`) and the launcher reads the port
back from the banner line, so two launches never race for the same port.

    with launch_service(db_path=tmp / "s.db") as service:
        httpx.post(f"{service.url}/v1/chat", json={"message": "Hello"})
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from rolescope.child_process import ChildProcess
from rolescope.client_tls import ClientTls
from rolescope.errors import EnvironmentProblem

_LISTENING = re.compile(r"HTTP server listening on :(\d+)")


class ServiceProcess(ChildProcess):
    """A running role service child process; a context manager that stops it on exit."""

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def __enter__(self) -> ServiceProcess:
        return self


def _wait_ready(
    process: subprocess.Popen[bytes], log_path: Path, ready_timeout: float, tls: ClientTls | None = None
) -> str:
    deadline = time.monotonic() + ready_timeout
    url: str | None = None
    while time.monotonic() < deadline:
        log = log_path.read_text(encoding="utf-8", errors="replace")
        if process.poll() is not None:
            raise EnvironmentProblem(
                f"the role service exited with status {process.returncode} before it was ready:\n"
                f"{log[-3000:]}"
            )
        if url is None and (match := _LISTENING.search(log)):
            url = f"{'https' if tls is not None else 'http'}://127.0.0.1:{match.group(1)}"
        if url is not None:
            try:
                verify = tls.ssl_context() if tls is not None else True
                if httpx.get(f"{url}/readyz", timeout=2, verify=verify).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    process.kill()
    process.wait(timeout=10)
    raise EnvironmentProblem(f"the role service was not ready within {ready_timeout:.0f} s; log: {log_path}")


def launch_service(
    *,
    roles_path: Path | None = None,
    db_path: Path | None = None,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    ready_timeout: float = 30.0,
    tls: ClientTls | None = None,
    python: str | None = None,
) -> ServiceProcess:
    """Start `python -m rolescope serve --host 127.0.0.1 ...` and return once `/readyz` answers 200.

    `port=None` lets the service pick a free port. `env` is added to this process's
    environment (e.g. `{"ROLESCOPE_FAULT_ERROR_RATE": "0.1"}`). Output goes to `log_path`
    (a temporary file when not given). Raises EnvironmentProblem with the log tail if the
    service exits or is not ready in time. `tls`: the service serves HTTPS (pass `--tls-*` in
    `extra_args`); the readiness check trusts its CA and presents its client certificate.
    `python` runs another interpreter (another checkout's venv, as a benchmark's reference)
    instead of this one.
    """
    interpreter = python or sys.executable
    args = [interpreter, "-m", "rolescope", "serve", "--host", "127.0.0.1", "--port", str(port or 0)]
    if roles_path is not None:
        args += ["--config", str(roles_path)]
    if db_path is not None:
        args += ["--db", str(db_path)]
    args += list(extra_args)
    if log_path is None:
        handle, name = tempfile.mkstemp(prefix="rolescope-serve-", suffix=".log")
        os.close(handle)
        log_path = Path(name)
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8", **(env or {})}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=child_env, stdin=subprocess.DEVNULL
        )
    try:
        url = _wait_ready(process, log_path, ready_timeout, tls)
    except BaseException:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        raise
    return ServiceProcess(process, url, log_path)
