"""Start `rolescope capture` as a child process and wait until it listens: for tests and the benchmark.

with launch_proxy("http://127.0.0.1:8080", out=Path("shadow.jsonl")) as proxy:
    httpx.post(f"{proxy.url}/v1/chat", json={"message": "Hello"})
proxy.log()  # the banner, progress lines and the final counts
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from rolescope.child_process import ChildProcess
from rolescope.errors import EnvironmentProblem

_LISTENING = re.compile(r"capture proxy listening on (http://[^ ]+) ")


class ProxyProcess(ChildProcess):
    def stop(self, timeout: float = 15.0, sig: int = signal.SIGTERM) -> int:
        """Stop it as an operator would (SIGTERM): replies under way finish, the file is flushed."""
        return super().stop(timeout, sig)

    def __enter__(self) -> ProxyProcess:
        return self


def launch_proxy(
    upstream: str,
    *,
    out: Path,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    ready_timeout: float = 30.0,
) -> ProxyProcess:
    """Start `python -m rolescope capture --listen 127.0.0.1:0 …`; returns once it listens."""
    if log_path is None:
        handle, name = tempfile.mkstemp(prefix="rolescope-capture-", suffix=".log")
        os.close(handle)
        log_path = Path(name)
    args = [
        sys.executable, "-m", "rolescope", "capture", "--listen", "127.0.0.1:0",
        "--upstream", upstream, "--out", str(out), *extra_args,
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        text = log_path.read_text(encoding="utf-8", errors="replace")
        if found := _LISTENING.search(text):
            return ProxyProcess(process, found.group(1).rstrip(";"), log_path)
        if process.poll() is not None:
            raise EnvironmentProblem(f"rolescope capture exited with {process.returncode}:\n{text[-3000:]}")
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise EnvironmentProblem(f"rolescope capture did not listen within {ready_timeout:.0f} s")
