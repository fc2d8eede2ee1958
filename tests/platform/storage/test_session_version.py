"""The version that answered a session's first turn is stored with it and answers every later turn.

Real `rolescope serve` processes on real SQLite files and a real redis-server; the release
weights change, and a version is removed, by reloading role files with SIGHUP.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from rolescope.release_policy import rendezvous_version
from rolescope.serving.launcher import ServiceProcess
from rolescope.settings import bundled_roles_path
from rolescope.storage.base import MemoryPolicyView
from rolescope.storage.sqlite_store import SCHEMA_VERSION, SqliteSessionStore
from tests.conftest import metric_value

ServiceFactory = Callable[..., ServiceProcess]
SESSIONS = 200
BEFORE = {"1.2": 50.0, "1.3": 50.0}
AFTER = {"1.2": 10.0, "1.3": 90.0}
KEEP_ALL = MemoryPolicyView(max_turns=1000, ttl_seconds=None)


def write_roles(folder: Path, weights: dict[str, float] | None, *, with_13: bool = True) -> None:
    """sherlock 1.2 (carrying the release policy when `weights` is given) and, optionally, 1.3."""
    folder.mkdir(exist_ok=True)
    base = yaml.safe_load((bundled_roles_path() / "sherlock.yaml").read_text(encoding="utf-8"))
    base["inference"]["simulator"].update(ttft_ms=0, tokens_per_second=100_000, jitter=0.0)
    base["response_constraints"].update(max_tokens=8)
    stable = {**base, "release": {"weights": weights}} if weights else base
    (folder / "sherlock-1.2.yaml").write_text(yaml.safe_dump(stable), encoding="utf-8")
    canary = folder / "sherlock-1.3.yaml"
    if with_13:
        canary.write_text(yaml.safe_dump({**base, "version": "1.3"}), encoding="utf-8")
    else:
        canary.unlink(missing_ok=True)


def reload(service: ServiceProcess, applied: int) -> None:
    os.kill(service.pid, signal.SIGHUP)
    deadline = time.monotonic() + 15
    while metric_value(service.url, 'rolescope_role_reloads_total{outcome="applied"}') < applied:
        assert time.monotonic() < deadline, "the reload did not take effect in time"
        time.sleep(0.1)


def turn(client: httpx.Client, sessions: list[str]) -> dict[str, str]:
    answered = {}
    for session in sessions:
        response = client.post("/v1/chat", json={"message": "And then?", "session_id": session})
        assert response.status_code == 200, response.text
        answered[session] = response.json()["role_version"]
    return answered


def moves(url: str, version: str) -> float:
    series = f'rolescope_session_version_moves_total{{role="sherlock",role_version="{version}"}}'
    return metric_value(url, series)


@pytest.fixture(params=["sqlite", "redis"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "sqlite":
        return {}
    redis_url: str = request.getfixturevalue("redis_url")
    return {"ROLESCOPE_STORE": "redis", "ROLESCOPE_REDIS_URL": redis_url}


def test_changing_the_weights_under_way_moves_no_session_but_new_sessions_follow_them(
    tmp_path: Path, service_factory: ServiceFactory, store_env: dict[str, str]
) -> None:
    roles = tmp_path / "roles"
    write_roles(roles, BEFORE)
    service = service_factory(roles_path=roles, env=store_env)
    sessions = [f"weights-{tmp_path.name}-{index:04d}" for index in range(SESSIONS)]
    with httpx.Client(base_url=service.url, timeout=30) as client:
        first = turn(client, sessions)
        write_roles(roles, AFTER)
        reload(service, applied=1)
        later = turn(client, sessions)
        fresh = turn(client, [f"new-{session}" for session in sessions])
    # The new weights would have moved these sessions had the split been hashed again on every turn.
    would_move = [s for s in sessions if rendezvous_version("sherlock", s, AFTER) != first[s]]
    assert len(would_move) > SESSIONS // 10
    assert later == first
    # New sessions follow the new weights: the policy is still asked for them.
    assert all(v == rendezvous_version("sherlock", s, AFTER) for s, v in fresh.items())
    assert Counter(fresh.values())["1.3"] > SESSIONS * 0.75
    assert moves(service.url, "1.2") == moves(service.url, "1.3") == 0


def test_a_removed_version_moves_its_sessions_once_and_counts_each_move(
    tmp_path: Path, service_factory: ServiceFactory, store_env: dict[str, str]
) -> None:
    roles = tmp_path / "roles"
    write_roles(roles, BEFORE)
    service = service_factory(roles_path=roles, env=store_env)
    sessions = [f"removed-{tmp_path.name}-{index:04d}" for index in range(SESSIONS)]
    with httpx.Client(base_url=service.url, timeout=30) as client:
        first = turn(client, sessions)
        on_13 = [s for s in sessions if first[s] == "1.3"]
        assert 0 < len(on_13) < SESSIONS
        write_roles(roles, None, with_13=False)
        reload(service, applied=1)
        moved = turn(client, sessions)
        assert set(moved.values()) == {"1.2"}
        assert moves(service.url, "1.2") == len(on_13)
        # 1.3 is back with the old weights: the moved sessions stay where they were moved to.
        write_roles(roles, BEFORE)
        reload(service, applied=2)
        again = turn(client, sessions)
    assert set(again.values()) == {"1.2"}
    assert moves(service.url, "1.2") == len(on_13)


def test_a_pinned_turn_answers_with_its_pin_and_leaves_the_stored_version(
    tmp_path: Path, service_factory: ServiceFactory
) -> None:
    roles = tmp_path / "roles"
    write_roles(roles, {"1.2": 100.0, "1.3": 0.0})
    service = service_factory(roles_path=roles)
    with httpx.Client(base_url=service.url, timeout=30) as client:
        opened = client.post("/v1/chat", json={"message": "Hello", "role": "sherlock@1.3"}).json()
        session = opened["session_id"]
        assert opened["role_version"] == "1.3"
        pinned = client.post(
            "/v1/chat", json={"message": "Hm?", "session_id": session}, headers={"X-Role-Version": "1.2"}
        ).json()
        assert pinned["role_version"] == "1.2"
        # The pinned first turn is the session's version; the weights (all on 1.2) are not asked again.
        assert turn(client, [session]) == {session: "1.3"}


# The schema before role versions were stored, as rolescope wrote it.
_OLD_SCHEMA = """
CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY, role_name TEXT NOT NULL, owner TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    speaker TEXT NOT NULL CHECK (speaker IN ('user', 'assistant')),
    content TEXT NOT NULL, timestamp REAL NOT NULL
);
CREATE INDEX turns_by_session ON turns(session_id, id);
CREATE TABLE idempotency (
    owner TEXT NOT NULL, key TEXT NOT NULL, body_digest TEXT NOT NULL,
    response_json TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (owner, key)
);
"""


def _old_database(path: Path, sessions: list[str]) -> None:
    now = time.time()
    with sqlite3.connect(path) as c:
        c.executescript(_OLD_SCHEMA)
        for session in sessions:
            c.execute("INSERT INTO sessions VALUES (?, 'sherlock', NULL, ?, ?)", (session, now, now))
            c.executemany(
                "INSERT INTO turns (session_id, speaker, content, timestamp) VALUES (?, ?, ?, ?)",
                [
                    (session, "user", f"old question of {session}", now),
                    (session, "assistant", "old answer", now),
                ],
            )
        c.execute("INSERT INTO idempotency VALUES ('', 'k1', 'digest', '{}', ?)", (now,))


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_old_database_file_migrates_in_place_keeping_every_row(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_database(path, ["old-a", "old-b"])
    store = SqliteSessionStore(path)
    await store.open()
    try:
        for session in ("old-a", "old-b"):
            record = await store.get_session(session, KEEP_ALL)
            assert record is not None and record.role_version is None
            assert [t.content for t in record.turns] == [f"old question of {session}", "old answer"]
        assert await store.find_idempotent(None, "k1") is not None
    finally:
        await store.close()
    with sqlite3.connect(path) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # Opening it again (another worker, a restart) finds it migrated and changes nothing.
    again = SqliteSessionStore(path)
    await again.open()
    await again.close()


def test_a_session_from_an_old_database_gets_the_policys_version_recorded_and_keeps_it(
    tmp_path: Path, service_factory: ServiceFactory
) -> None:
    db = tmp_path / "old.db"
    sessions = [f"legacy-{index:03d}" for index in range(40)]
    _old_database(db, sessions)
    roles = tmp_path / "roles"
    write_roles(roles, BEFORE)
    service = service_factory(roles_path=roles, db_path=db)
    with httpx.Client(base_url=service.url, timeout=30) as client:
        first = turn(client, sessions)
        # What the split gave these sessions before versions were stored, so nobody moved.
        assert first == {s: rendezvous_version("sherlock", s, BEFORE) for s in sessions}
        history = client.get(f"/v1/sessions/{sessions[0]}").json()
        assert f"old question of {sessions[0]}" in str(history)
        write_roles(roles, AFTER)
        reload(service, applied=1)
        assert turn(client, sessions) == first
    assert moves(service.url, "1.2") == moves(service.url, "1.3") == 0
