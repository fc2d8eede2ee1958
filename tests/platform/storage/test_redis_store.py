"""The Redis session store against a real redis-server on 127.0.0.1 (Debian package)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rolescope.errors import ConfigError
from rolescope.storage.base import (
    ExchangeRecord,
    IdempotencyRecord,
    MemoryPolicyView,
    SessionOwnedElsewhere,
    SessionStore,
    StoreError,
    Turn,
)
from rolescope.storage.redis_store import IdempotencyKeyTaken, RedisSessionStore, redact_url

pytestmark = pytest.mark.anyio

KEEP_ALL = MemoryPolicyView(max_turns=1000, ttl_seconds=None)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def store(redis_url: str, request: pytest.FixtureRequest) -> AsyncIterator[RedisSessionStore]:
    # A key prefix per test keeps tests independent on the shared server.
    opened = RedisSessionStore(redis_url, key_prefix=f"t-{request.node.name}")
    await opened.open()
    yield opened
    await opened.close()


def _exchange(session_id: str, n: int, *, owner: str | None = "owner-a", at: float | None = None,
              idem: IdempotencyRecord | None = None) -> ExchangeRecord:
    now = time.time() if at is None else at
    return ExchangeRecord(
        session_id=session_id,
        role_name="sherlock",
        owner=owner,
        user_turn=Turn("user", f"question {n}", now),
        assistant_turn=Turn("assistant", f"answer {n}", now + 0.001),
        idempotency=idem,
    )


def test_store_keeps_the_session_store_contract(redis_url: str) -> None:
    assert isinstance(RedisSessionStore(redis_url), SessionStore)


def test_location_never_shows_the_password() -> None:
    assert redact_url("redis://:s3cret@redis.example:6379/0") == "redis://:***@redis.example:6379/0"
    assert redact_url("redis://app:s3cret@redis:6379/1") == "redis://app:***@redis:6379/1"
    assert "s3cret" not in RedisSessionStore("redis://app:s3cret@redis:6379/1").location


def test_a_url_that_is_not_redis_is_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="redis_url"):
        RedisSessionStore("http://127.0.0.1:6379")


async def test_exchange_round_trips_with_owner_role_and_turn_order(store: RedisSessionStore) -> None:
    assert await store.ping()
    assert await store.get_session("s1", KEEP_ALL) is None
    await store.save_exchange(_exchange("s1", 1), KEEP_ALL)
    await store.save_exchange(_exchange("s1", 2), KEEP_ALL)
    record = await store.get_session("s1", KEEP_ALL)
    assert record is not None
    assert (record.role_name, record.owner) == ("sherlock", "owner-a")
    assert [t.content for t in record.turns] == ["question 1", "answer 1", "question 2", "answer 2"]
    assert [t.speaker for t in record.turns] == ["user", "assistant"] * 2
    assert record.created_at <= record.updated_at


async def test_a_session_without_owner_reads_back_as_none(store: RedisSessionStore) -> None:
    await store.save_exchange(_exchange("anon", 1, owner=None), KEEP_ALL)
    record = await store.get_session("anon", KEEP_ALL)
    assert record is not None and record.owner is None


async def test_turns_are_trimmed_to_the_policy_on_write_and_on_read(store: RedisSessionStore) -> None:
    keep_four = MemoryPolicyView(max_turns=4, ttl_seconds=None)
    for n in range(5):
        await store.save_exchange(_exchange("trim", n), keep_four)
    record = await store.get_session("trim", KEEP_ALL)
    assert record is not None
    assert [t.content for t in record.turns] == ["question 3", "answer 3", "question 4", "answer 4"]
    shorter = await store.get_session("trim", MemoryPolicyView(max_turns=1, ttl_seconds=None))
    assert shorter is not None and [t.content for t in shorter.turns] == ["answer 4"]


async def test_expiry_is_set_in_redis_from_the_policy(store: RedisSessionStore, redis_url: str) -> None:
    await store.save_exchange(_exchange("ttl", 1), MemoryPolicyView(max_turns=10, ttl_seconds=120))
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        for key in (store._session_key("ttl"), store._turns_key("ttl")):
            ttl_ms = await client.pttl(key)
            assert 0 < ttl_ms <= 120_000
        # A later exchange without expiry makes the session permanent again.
        await store.save_exchange(_exchange("ttl", 2), KEEP_ALL)
        assert await client.pttl(store._session_key("ttl")) == -1
    finally:
        await client.aclose()


async def test_a_session_older_than_the_policy_reads_as_expired(store: RedisSessionStore) -> None:
    long_ago = time.time() - 3600
    two_hours = MemoryPolicyView(max_turns=10, ttl_seconds=7200)
    await store.save_exchange(_exchange("old", 1, at=long_ago), two_hours)
    assert await store.get_session("old", two_hours) is not None
    assert await store.get_session("old", MemoryPolicyView(max_turns=10, ttl_seconds=60)) is None


async def test_concurrent_exchanges_never_interleave_their_turns(store: RedisSessionStore) -> None:
    await asyncio.gather(*(store.save_exchange(_exchange("busy", n), KEEP_ALL) for n in range(60)))
    record = await store.get_session("busy", KEEP_ALL)
    assert record is not None and len(record.turns) == 120
    for user, assistant in zip(record.turns[::2], record.turns[1::2], strict=True):
        assert user.speaker == "user" and assistant.speaker == "assistant"
        assert user.content.removeprefix("question ") == assistant.content.removeprefix("answer ")


async def test_idempotency_records_are_stored_per_owner(store: RedisSessionStore) -> None:
    idem = IdempotencyRecord(owner="owner-a", key="k-1", body_digest="d1", response_json='{"x":1}',
                             created_at=time.time())
    await store.save_exchange(_exchange("idem", 1, idem=idem), KEEP_ALL)
    assert await store.find_idempotent("owner-a", "k-1") == idem
    assert await store.find_idempotent("owner-b", "k-1") is None
    assert await store.find_idempotent(None, "k-1") is None
    assert await store.find_idempotent("owner-a", "k-2") is None


async def test_concurrent_replays_of_one_key_store_exactly_one_exchange(store: RedisSessionStore) -> None:
    def replay(n: int) -> ExchangeRecord:
        idem = IdempotencyRecord(owner="owner-a", key="same", body_digest="d", response_json=f'{{"n":{n}}}',
                                 created_at=time.time())
        return _exchange("replayed", n, idem=idem)

    results = await asyncio.gather(*(store.save_exchange(replay(n), KEEP_ALL) for n in range(20)),
                                   return_exceptions=True)
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, IdempotencyKeyTaken) for r in results if r is not None)
    record = await store.get_session("replayed", KEEP_ALL)
    assert record is not None and len(record.turns) == 2
    stored = await store.find_idempotent("owner-a", "same")
    assert stored is not None and stored.response_json == f'{{"n":{record.turns[0].content.split()[-1]}}}'


async def test_an_exchange_for_another_owners_session_is_refused(store: RedisSessionStore) -> None:
    await store.save_exchange(_exchange("shared-id", 1, owner="alice"), KEEP_ALL)
    with pytest.raises(SessionOwnedElsewhere):
        await store.save_exchange(_exchange("shared-id", 2, owner="mallory"), KEEP_ALL)
    record = await store.get_session("shared-id", KEEP_ALL)
    assert record is not None and record.owner == "alice" and len(record.turns) == 2


async def test_an_unreachable_redis_is_not_ready_and_writes_raise_store_error(free_port: int) -> None:
    dead = RedisSessionStore(f"redis://127.0.0.1:{free_port}/0", socket_timeout_s=0.5)
    await dead.open()
    try:
        assert await dead.ping() is False
        with pytest.raises(StoreError):
            await dead.save_exchange(_exchange("x", 1), KEEP_ALL)
        with pytest.raises(StoreError):
            await dead.get_session("x", KEEP_ALL)
    finally:
        await dead.close()


async def test_using_a_store_before_open_is_a_clear_error(redis_url: str) -> None:
    closed = RedisSessionStore(redis_url)
    assert await closed.ping() is False
    with pytest.raises(StoreError, match="not open"):
        await closed.get_session("x", KEEP_ALL)


def test_two_service_replicas_share_one_conversation_through_redis(redis_url: str, tmp_path: Path) -> None:
    import httpx

    from rolescope.serving.launcher import launch_service

    env = {"ROLESCOPE_STORE": "redis", "ROLESCOPE_REDIS_URL": redis_url}
    with launch_service(env=env, db_path=tmp_path / "unused-a.db") as first, \
            launch_service(env=env, db_path=tmp_path / "unused-b.db") as second:
        opened = httpx.post(f"{first.url}/v1/chat", json={"role": "sherlock", "message": "A torn ticket."},
                            timeout=30).raise_for_status().json()
        session_id = opened["session_id"]
        httpx.post(f"{second.url}/v1/chat",
                   json={"role": "sherlock", "message": "And the ash?", "session_id": session_id},
                   timeout=30).raise_for_status()
        history = httpx.get(f"{first.url}/v1/sessions/{session_id}", timeout=30).raise_for_status().json()
    text = json.dumps(history)
    assert "A torn ticket." in text and "And the ash?" in text
    assert not (tmp_path / "unused-a.db").exists() and not (tmp_path / "unused-b.db").exists()


async def test_a_session_may_start_with_a_greeting_alone(store: RedisSessionStore) -> None:
    at = time.time()
    greeting = ExchangeRecord("greeted1", "sherlock", "owner-a", None, Turn("assistant", "Good day.", at))
    await store.save_exchange(greeting, KEEP_ALL)
    record = await store.get_session("greeted1", KEEP_ALL)
    assert record is not None and record.owner == "owner-a" and record.created_at == pytest.approx(at)
    assert [(t.speaker, t.content) for t in record.turns] == [("assistant", "Good day.")]
    await store.save_exchange(_exchange("greeted1", 1), KEEP_ALL)
    record = await store.get_session("greeted1", KEEP_ALL)
    assert record is not None
    assert [t.content for t in record.turns] == ["Good day.", "question 1", "answer 1"]
