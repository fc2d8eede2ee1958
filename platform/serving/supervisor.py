"""`serve --workers N`: uvicorn's worker supervisor, with SIGHUP meaning "reload the role files".

uvicorn's supervisor answers SIGHUP by replacing every worker process. Role
files reload in place instead (`reload.py`), so the supervisor forwards the
signal to each worker and each one validates and swaps its own roles, keeping
its connections and in-flight requests. Every other signal keeps uvicorn's meaning.
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

logger = logging.getLogger("rolescope.supervisor")


class ReloadingSupervisor(Multiprocess):
    def handle_hup(self) -> None:
        logger.warning("Received SIGHUP: each worker reloads its role files.")
        for process in self.processes:
            if process.pid is not None and process.process.is_alive():
                os.kill(process.pid, signal.SIGHUP)


def run_workers(app: str, **options: Any) -> None:
    """What `uvicorn.run(app, factory=True, workers=N, ...)` does, under `ReloadingSupervisor`."""
    config = uvicorn.Config(app, factory=True, **options)
    sock = config.bind_socket()
    if "target" in inspect.signature(Multiprocess.__init__).parameters:  # older uvicorn
        server = uvicorn.Server(config)
        ReloadingSupervisor(config, target=server.run, sockets=[sock]).run()  # type: ignore[call-arg]
    else:
        ReloadingSupervisor(config, sockets=[sock]).run()
