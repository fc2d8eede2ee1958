"""Authentication and ownership against a real service: a session is visible to its creator only."""

from __future__ import annotations

import asyncio
import base64
import secrets
import sqlite3

import httpx

from rolescope.service.auth import owner_id_for

PAIRS = 1000
CONCURRENCY = 32
# Controls (the owner can read, no key gets 401) on a sample; the cross-key checks run on every pair.
CONTROL_EVERY = 10


def test_another_key_never_reads_or_writes_a_session_it_did_not_create(reliability_service) -> None:  # type: ignore[no-untyped-def]
    pairs = [(secrets.token_hex(16), secrets.token_hex(16)) for _ in range(PAIRS)]
    keys = [key for pair in pairs for key in pair]
    service = reliability_service(ROLESCOPE_API_KEYS=",".join(keys))
    outcomes: dict[str, list[int]] = {"own_read": [], "other_read": [], "other_write": [], "anonymous": []}
    session_ids: list[str] = []

    async def one(
        index: int, owner_key: str, other_key: str, client: httpx.AsyncClient, gate: asyncio.Semaphore
    ) -> None:
        async with gate:
            created = await client.post("/v1/chat", json={"message": "hello", "role": "fast"},
                                        headers={"Authorization": f"Bearer {owner_key}"})
            assert created.status_code == 200, created.text
            session_id = created.json()["session_id"]
            session_ids.append(session_id)
            other = await client.get(f"/v1/sessions/{session_id}", headers={"X-API-Key": other_key})
            write = await client.post("/v1/chat", json={"message": "mine now", "session_id": session_id},
                                      headers={"X-API-Key": other_key})
            outcomes["other_read"].append(other.status_code)
            outcomes["other_write"].append(write.status_code)
            if index % CONTROL_EVERY == 0:
                own = await client.get(f"/v1/sessions/{session_id}", headers={"X-API-Key": owner_key})
                anonymous = await client.get(f"/v1/sessions/{session_id}")
                outcomes["own_read"].append(own.status_code)
                outcomes["anonymous"].append(anonymous.status_code)

    async def run() -> None:
        gate = asyncio.Semaphore(CONCURRENCY)
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
            await asyncio.gather(*(one(i, a, b, client, gate) for i, (a, b) in enumerate(pairs)))

    asyncio.run(run())
    assert outcomes["other_read"] == [404] * PAIRS
    assert outcomes["other_write"] == [404] * PAIRS
    assert outcomes["own_read"] == [200] * (PAIRS // CONTROL_EVERY)
    assert outcomes["anonymous"] == [401] * (PAIRS // CONTROL_EVERY)

    # Session ids are random with at least 122 bits: 16 random bytes, base64url.
    assert len(set(session_ids)) == PAIRS
    for session_id in session_ids:
        assert len(base64.urlsafe_b64decode(session_id + "=" * (-len(session_id) % 4))) * 8 >= 122

    # The store keeps an identity derived from the key, never the key itself; B's writes stored nothing.
    with sqlite3.connect(service.db_path) as db:
        owners = {row[0] for row in db.execute("SELECT owner FROM sessions")}
        turns = db.execute("SELECT COUNT(*) FROM turns WHERE content = 'mine now'").fetchone()[0]
    assert owners == {owner_id_for(a) for a, _ in pairs}
    assert not owners & set(keys)
    assert turns == 0


def test_without_keys_the_service_is_open_and_sessions_are_shared_by_id(reliability_service) -> None:  # type: ignore[no-untyped-def]
    service = reliability_service()
    created = httpx.post(f"{service.url}/v1/chat", json={"message": "hi", "role": "fast"}, timeout=30)
    assert created.status_code == 200
    session_id = created.json()["session_id"]
    assert httpx.get(f"{service.url}/v1/sessions/{session_id}", timeout=30).status_code == 200
