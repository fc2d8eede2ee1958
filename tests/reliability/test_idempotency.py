"""Idempotency-Key against a real service: one stored turn, one answer, 409 while running, 422 on reuse."""

from __future__ import annotations

import asyncio

import httpx

from rolescope.reliability.checks import user_turn_count


async def until_answered(client: httpx.AsyncClient, body: dict[str, object], key: str) -> tuple[int, dict]:
    """Send, and on 409 retry after the advertised Retry-After (bounded); (409s seen, final JSON)."""
    for conflicts in range(200):
        response = await client.post("/v1/chat", json=body, headers={"Idempotency-Key": key})
        if response.status_code != 409:
            assert response.status_code == 200, response.text
            return conflicts, response.json()
        assert response.headers["retry-after"]
        await asyncio.sleep(0.05)
    raise AssertionError("still 409 after 200 tries")


def test_concurrent_replays_store_one_turn_and_return_one_answer(reliability_service) -> None:  # type: ignore[no-untyped-def]
    service = reliability_service()
    body = {"message": "idempotent hello", "role": "slow"}

    async def run() -> list[tuple[int, dict]]:
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
            return await asyncio.gather(*(until_answered(client, body, "key-1") for _ in range(10)))

    results = asyncio.run(run())
    answers = [answer for _, answer in results]
    assert all(answer == answers[0] for answer in answers)
    # The first ran; the nine others arrived while it was running and were told so.
    assert sorted(conflicts > 0 for conflicts, _ in results) == [False] + [True] * 9
    assert user_turn_count(service.db_path, "idempotent hello") == 1

    # Later replays, streamed or not, get the stored answer and store nothing.
    again = httpx.post(f"{service.url}/v1/chat", json=body, headers={"Idempotency-Key": "key-1"}, timeout=30)
    assert again.json() == answers[0]
    with httpx.stream("POST", f"{service.url}/v1/chat", json={**body, "stream": True},
                      headers={"Idempotency-Key": "key-1"}, timeout=30) as streamed:
        text = streamed.read().decode()
    assert "event: done" in text and answers[0]["content"][:40] in text
    assert user_turn_count(service.db_path, "idempotent hello") == 1


def test_the_same_key_with_a_different_body_is_refused(reliability_service) -> None:  # type: ignore[no-untyped-def]
    service = reliability_service()
    with httpx.Client(base_url=service.url, timeout=30) as client:
        first = client.post("/v1/chat", json={"message": "one", "role": "fast"},
                            headers={"Idempotency-Key": "k"})
        assert first.status_code == 200
        reused = client.post("/v1/chat", json={"message": "two", "role": "fast"},
                             headers={"Idempotency-Key": "k"})
        assert reused.status_code == 422
        assert reused.json()["error"]["code"] == "idempotency_key_reused"
        # Keys belong to their owner (here: the anonymous one) and are independent of each other.
        other = client.post("/v1/chat", json={"message": "two", "role": "fast"},
                            headers={"Idempotency-Key": "k2"})
        assert other.status_code == 200
    assert user_turn_count(service.db_path, "two") == 1


def test_a_replay_while_the_first_is_running_gets_409(reliability_service) -> None:  # type: ignore[no-untyped-def]
    service = reliability_service()
    body = {"message": "slow one", "role": "slow", "stream": True}

    async def run() -> httpx.Response:
        headers = {"Idempotency-Key": "busy"}
        async with (
            httpx.AsyncClient(base_url=service.url, timeout=60) as client,
            client.stream("POST", "/v1/chat", json=body, headers=headers) as first,
        ):
            assert first.status_code == 200
            async for _ in first.aiter_text():
                break  # the first is now generating
            return await client.post("/v1/chat", json=body, headers=headers)

    replay = asyncio.run(run())
    assert replay.status_code == 409
    assert replay.headers["retry-after"] == "1"
    assert replay.json()["error"]["code"] == "idempotency_in_progress"
