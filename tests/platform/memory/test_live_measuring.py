"""The live service in measuring mode: memray in the process, a window per SIGUSR1 and one at shutdown."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from rolescope.errors import ConfigError
from rolescope.memory.compare import compare_memory
from rolescope.memory.live import LATEST
from rolescope.memory.model import Baseline, load_baseline
from rolescope.memory.replay import fast_roles
from rolescope.serving.launcher import launch_service
from rolescope.settings import Settings


def _send(url: str, index: int) -> None:
    chat = httpx.post(f"{url}/v1/chat", json={"message": f"Hello {index}", "session_id": "live-chat-session"},
                      timeout=30)
    chat.raise_for_status()
    body = {"message": f"Tell me {index}", "session_id": "live-stream-session", "stream": True}
    stream = httpx.post(f"{url}/v1/chat", json=body, timeout=30)
    assert stream.status_code == 200 and "event:" in stream.text


def _wait_for(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} was not written within {seconds} s"
        time.sleep(0.1)


def test_measuring_mode_writes_a_window_per_signal_and_one_at_shutdown(tmp_path: Path) -> None:
    out = tmp_path / "memory"
    roles = fast_roles(Settings().roles_path, tmp_path / "roles")  # zero simulator delays: a quick test
    with launch_service(
        roles_path=roles, db_path=tmp_path / "live.db", extra_args=["--measure-memory", str(out)]
    ) as service:
        _send(service.url, 0)
        os.kill(service.pid, signal.SIGUSR1)  # closes the warm-up window
        _wait_for(out / "memory-window-1.json")
        for index in range(1, 4):
            _send(service.url, index)
        os.kill(service.pid, signal.SIGUSR1)
        _wait_for(out / "memory-window-2.json")
        metrics = httpx.get(f"{service.url}/metrics", timeout=10).text
        _send(service.url, 9)
    assert 'rolescope_memory_allocations_per_request{kind="all"}' in metrics

    window = load_baseline(out / "memory-window-2.json")
    assert window.mode == "live"
    assert window.settings["requests_by_kind"] == {"chat": 3, "stream": 3}
    every = window.kinds["all"]
    assert every.requests == 6 and every.sessions == 2
    assert every.allocations_per_request > 1000 and every.bytes_per_request > 10_000 and every.peak_bytes > 0
    assert every.top_sites
    # Shutdown closed the last window, and memory.json always holds the latest one.
    final = load_baseline(out / LATEST)
    assert final.settings["window"] == 3 and final.settings["requests_by_kind"] == {"chat": 1, "stream": 1}
    assert not list(out.glob("*.bin"))  # captures are removed once read

    # Live figures compare with live figures only.
    assert compare_memory(window, window).passed
    in_process = window.model_copy(update={"mode": "in-process"})
    with pytest.raises(ConfigError, match="measured in-process and the candidate live"):
        compare_memory(Baseline.model_validate(in_process.model_dump()), window)
