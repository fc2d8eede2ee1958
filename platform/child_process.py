"""A child process this program started and waits on: its log, and a stop that ends it for sure.

with ChildProcess(subprocess.Popen(args, stdout=log), url, log_path) as child:
    ...
child.log()  # what it wrote
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from types import TracebackType


class ChildProcess:
    """A started child that answers at `url` and writes to `log_path`; a context manager that stops it."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> int:
        """`sig` (SIGTERM: a graceful stop, work under way finishes), then SIGKILL after `timeout`."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        return int(self.process.returncode)

    def __enter__(self) -> ChildProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
