"""Idempotency rules: replay the stored answer, 409 while running, 422 for a reused key."""

from __future__ import annotations

import asyncio

import pytest

from rolescope.service.idempotency import IdempotencyError, IdempotencyGuard, body_digest, make_record
from rolescope.storage.base import IdempotencyRecord


class Records:
    def __init__(self) -> None:
        self.saved: dict[tuple[str | None, str], IdempotencyRecord] = {}

    async def find(self, owner: str | None, key: str) -> IdempotencyRecord | None:
        await asyncio.sleep(0)
        return self.saved.get((owner, key))


def test_digest_ignores_key_order_and_spacing() -> None:
    forward = body_digest({"message": "hi", "role": "sherlock"})
    assert forward == body_digest({"role": "sherlock", "message": "hi"})
    assert body_digest({"message": "hi"}) != body_digest({"message": "hi!"})


def test_first_request_runs_then_replays_get_the_stored_answer() -> None:
    async def scenario() -> None:
        guard, records = IdempotencyGuard(), Records()
        digest = body_digest({"message": "hi"})
        assert await guard.begin(records.find, "owner", "k1", digest) is None
        record = make_record("owner", "k1", digest, {"content": "hello"})
        records.saved[("owner", "k1")] = record
        guard.release("owner", "k1")
        replay = await guard.begin(records.find, "owner", "k1", digest)
        assert replay is not None and replay.response_json == '{"content":"hello"}'
        assert guard.running == 0
        # The same key under another owner is a different key.
        assert await guard.begin(records.find, "other", "k1", digest) is None

    asyncio.run(scenario())


def test_concurrent_duplicates_get_409_and_a_different_body_gets_422() -> None:
    async def scenario() -> None:
        guard, records = IdempotencyGuard(), Records()
        digest = body_digest({"message": "hi"})
        outcomes = await asyncio.gather(
            *(guard.begin(records.find, None, "k", digest) for _ in range(10)), return_exceptions=True
        )
        proceeded = [o for o in outcomes if o is None]
        conflicts = [o for o in outcomes if isinstance(o, IdempotencyError)]
        assert len(proceeded) == 1
        assert len(conflicts) == 9
        assert {c.status for c in conflicts} == {409}
        assert all(c.retry_after_s for c in conflicts)
        with pytest.raises(IdempotencyError) as reused:
            await guard.begin(records.find, None, "k", body_digest({"message": "other"}))
        assert reused.value.status == 422
        records.saved[(None, "k")] = make_record(None, "k", digest, {"content": "x"})
        guard.release(None, "k")
        with pytest.raises(IdempotencyError) as reused_after:
            await guard.begin(records.find, None, "k", body_digest({"message": "other"}))
        assert reused_after.value.status == 422

    asyncio.run(scenario())


def test_a_failed_first_request_frees_the_key_for_a_retry() -> None:
    async def scenario() -> None:
        guard, records = IdempotencyGuard(), Records()
        assert await guard.begin(records.find, None, "k", "d") is None
        guard.release(None, "k")  # the exchange failed, nothing stored
        assert await guard.begin(records.find, None, "k", "d") is None

    asyncio.run(scenario())


@pytest.mark.parametrize("key", ["", "x" * 256, "snow\u2603man", "tab\there"])
def test_malformed_keys_are_refused(key: str) -> None:
    async def scenario() -> None:
        await IdempotencyGuard().begin(Records().find, None, key, "d")

    with pytest.raises(IdempotencyError) as refused:
        asyncio.run(scenario())
    assert refused.value.status == 422
