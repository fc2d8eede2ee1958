"""Session memory lives in the SQLite file: it survives stopping and restarting the service."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from rolescope.serving.launcher import ServiceProcess


def test_history_survives_a_restart(
    service_factory: Callable[..., ServiceProcess], tmp_path: Path, fast_roles_path: Path
) -> None:
    db = tmp_path / "memory.db"
    first = service_factory(db_path=db, roles_path=fast_roles_path)
    message = {"message": "The key was under the doormat.", "role": "grimble"}
    reply = httpx.post(f"{first.url}/v1/chat", json=message, timeout=30).json()
    session = reply["session_id"]
    assert first.stop() in (0, -15)  # exited after a graceful SIGTERM

    second = service_factory(db_path=db, roles_path=fast_roles_path)
    history = httpx.get(f"{second.url}/v1/sessions/{session}", timeout=10)
    assert history.status_code == 200
    assert [t["content"] for t in history.json()["turns"]] == [message["message"], reply["content"]]
    follow_up = httpx.post(
        f"{second.url}/v1/chat", json={"message": "Who rang the bell?", "session_id": session}, timeout=30
    ).json()
    assert follow_up["session_id"] == session and follow_up["role"] == "grimble"
    assert len(httpx.get(f"{second.url}/v1/sessions/{session}", timeout=10).json()["turns"]) == 4
