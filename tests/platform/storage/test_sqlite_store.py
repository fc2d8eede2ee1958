"""The SQLite session store on real files: atomic exchanges, memory policy, restart, concurrency."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from rolescope.storage.base import (
    ExchangeRecord,
    IdempotencyKeyTaken,
    IdempotencyRecord,
    MemoryPolicyView,
    SessionOwnedElsewhere,
    SessionStore,
    StoreError,
    Turn,
)
from rolescope.storage.sqlite_store import SqliteSessionStore

POLICY = MemoryPolicyView(max_turns=6, ttl_seconds=3600)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _exchange(
    session: str, n: int, at: float, owner: str | None = None, idempotency: IdempotencyRecord | None = None
) -> ExchangeRecord:
    return ExchangeRecord(
        session,
        "sherlock",
        owner,
        Turn("user", f"question {n}", at),
        Turn("assistant", f"answer {n}", at + 0.5),
        idempotency,
    )


def test_the_store_keeps_the_contract(tmp_path: Path) -> None:
    assert isinstance(SqliteSessionStore(tmp_path / "s.db"), SessionStore)


def test_exchanges_round_trip_and_are_trimmed_to_the_policy(tmp_path: Path) -> None:
    clock = Clock()
    store = SqliteSessionStore(tmp_path / "s.db", clock=clock)

    async def run() -> None:
        await store.open()
        assert await store.get_session("abcdefgh", POLICY) is None
        for n in range(5):
            await store.save_exchange(_exchange("abcdefgh", n, clock.now + n), POLICY)
        record = await store.get_session("abcdefgh", POLICY)
        assert record is not None and record.role_name == "sherlock" and record.owner is None
        assert [t.content for t in record.turns] == [
            "question 2",
            "answer 2",
            "question 3",
            "answer 3",
            "question 4",
            "answer 4",
        ]
        assert [t.speaker for t in record.turns[:2]] == ["user", "assistant"]
        shorter = await store.get_session("abcdefgh", MemoryPolicyView(2, None))
        assert shorter is not None and [t.content for t in shorter.turns] == ["question 4", "answer 4"]
        await store.close()

    asyncio.run(run())
    with sqlite3.connect(tmp_path / "s.db") as raw:
        assert raw.execute("SELECT COUNT(*) FROM turns").fetchone() == (6,)


def test_sessions_expire_after_the_ttl_and_restart_empty(tmp_path: Path) -> None:
    clock = Clock()
    store = SqliteSessionStore(tmp_path / "s.db", clock=clock)

    async def run() -> None:
        await store.open()
        await store.save_exchange(_exchange("expiring", 1, clock.now), POLICY)
        clock.now += 3599
        assert await store.get_session("expiring", POLICY) is not None
        clock.now += 3600
        assert await store.get_session("expiring", POLICY) is None
        await store.save_exchange(_exchange("expiring", 2, clock.now), POLICY)
        record = await store.get_session("expiring", POLICY)
        assert record is not None and [t.content for t in record.turns] == ["question 2", "answer 2"]
        await store.close()

    asyncio.run(run())


def test_history_survives_closing_and_reopening_the_file(tmp_path: Path) -> None:
    async def write() -> None:
        store = SqliteSessionStore(tmp_path / "s.db")
        await store.open()
        await store.save_exchange(_exchange("survivor", 1, 1e9 * 1.7), MemoryPolicyView(10, None))
        await store.close()

    async def read() -> list[str]:
        store = SqliteSessionStore(tmp_path / "s.db")
        await store.open()
        record = await store.get_session("survivor", MemoryPolicyView(10, None))
        await store.close()
        assert record is not None
        return [t.content for t in record.turns]

    asyncio.run(write())
    assert asyncio.run(read()) == ["question 1", "answer 1"]


def test_wal_busy_timeout_and_synchronous_are_set(tmp_path: Path) -> None:
    store = SqliteSessionStore(tmp_path / "s.db", synchronous="FULL", busy_timeout_ms=1234)

    async def pragmas() -> tuple:
        await store.open()
        result = await store._run(
            lambda c: (
                c.execute("PRAGMA journal_mode").fetchone()[0],
                c.execute("PRAGMA busy_timeout").fetchone()[0],
                c.execute("PRAGMA synchronous").fetchone()[0],
            )
        )
        await store.close()
        return result

    assert asyncio.run(pragmas()) == ("wal", 1234, 2)


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    policy = MemoryPolicyView(max_turns=1000, ttl_seconds=None)
    first, second = SqliteSessionStore(tmp_path / "s.db"), SqliteSessionStore(tmp_path / "s.db")

    async def run() -> int:
        await first.open()
        await second.open()
        await asyncio.gather(
            *(
                (first if n % 2 else second).save_exchange(_exchange(f"session-{n % 5}", n, 1e9 + n), policy)
                for n in range(60)
            )
        )
        total = 0
        for s in range(5):
            record = await first.get_session(f"session-{s}", policy)
            assert record is not None
            total += len(record.turns)
        await first.close()
        await second.close()
        return total

    assert asyncio.run(run()) == 120


def test_idempotency_records_are_stored_with_the_exchange(tmp_path: Path) -> None:
    store = SqliteSessionStore(tmp_path / "s.db")
    record = IdempotencyRecord("alice", "key-1", "digest", '{"content": "x"}', 1e9)

    async def run() -> None:
        await store.open()
        await store.save_exchange(_exchange("idem-session", 1, 1e9, "alice", record), POLICY)
        assert await store.find_idempotent("alice", "key-1") == record
        assert await store.find_idempotent("bob", "key-1") is None
        assert await store.find_idempotent(None, "key-1") is None
        await store.close()

    asyncio.run(run())


def test_a_stored_idempotency_key_refuses_a_second_exchange_and_writes_nothing(tmp_path: Path) -> None:
    clock = Clock()
    store = SqliteSessionStore(tmp_path / "s.db", clock=clock)
    first = IdempotencyRecord("alice", "key-1", "digest", '{"n": 1}', clock.now)
    second = IdempotencyRecord("alice", "key-1", "digest", '{"n": 2}', clock.now + 1)

    async def run() -> None:
        await store.open()
        await store.save_exchange(_exchange("idem-session", 1, clock.now, "alice", first), POLICY)
        with pytest.raises(IdempotencyKeyTaken):
            await store.save_exchange(_exchange("idem-session", 2, clock.now + 1, "alice", second), POLICY)
        assert await store.find_idempotent("alice", "key-1") == first
        record = await store.get_session("idem-session", POLICY)
        assert record is not None and [t.content for t in record.turns] == ["question 1", "answer 1"]
        await store.close()

    asyncio.run(run())


def test_an_exchange_for_another_owners_session_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    clock = Clock()
    store = SqliteSessionStore(tmp_path / "s.db", clock=clock)

    async def run() -> None:
        await store.open()
        await store.save_exchange(_exchange("shared-id", 1, clock.now, "alice"), POLICY)
        with pytest.raises(SessionOwnedElsewhere):
            await store.save_exchange(_exchange("shared-id", 2, clock.now + 1, "mallory"), POLICY)
        record = await store.get_session("shared-id", POLICY)
        assert record is not None and record.owner == "alice" and len(record.turns) == 2
        await store.close()

    asyncio.run(run())


def test_a_closed_or_unopenable_store_raises_store_error(tmp_path: Path) -> None:
    async def closed() -> None:
        await SqliteSessionStore(tmp_path / "s.db").get_session("abcdefgh", POLICY)

    with pytest.raises(StoreError):
        asyncio.run(closed())
    (tmp_path / "dir.db").mkdir()

    async def unopenable() -> bool:
        store = SqliteSessionStore(tmp_path / "dir.db")
        await store.open()
        return await store.ping()

    with pytest.raises(StoreError, match="cannot open"):
        asyncio.run(unopenable())


def test_a_session_may_start_with_a_greeting_alone(tmp_path: Path) -> None:
    clock = Clock()
    store = SqliteSessionStore(tmp_path / "s.db", clock=clock)

    async def run() -> None:
        await store.open()
        opening = Turn("assistant", "Good day.", clock.now)
        greeting = ExchangeRecord("greeted1", "sherlock", "me", None, opening)
        await store.save_exchange(greeting, POLICY)
        record = await store.get_session("greeted1", POLICY)
        assert record is not None and record.owner == "me" and record.created_at == clock.now
        assert [(t.speaker, t.content) for t in record.turns] == [("assistant", "Good day.")]
        await store.save_exchange(_exchange("greeted1", 1, clock.now + 1, owner="me"), POLICY)
        record = await store.get_session("greeted1", POLICY)
        assert record is not None
        assert [t.content for t in record.turns] == ["Good day.", "question 1", "answer 1"]
        await store.close()

    asyncio.run(run())
