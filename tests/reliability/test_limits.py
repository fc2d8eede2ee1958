"""Limits against a real service: body size, message length, turns per session, overload 503."""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from rolescope.exporters import names


def rejected(metrics_text: str, reason: str) -> float:
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == names.HTTP_REJECTED_TOTAL and sample.labels.get(names.LABEL_REASON) == reason:
                return sample.value
    return 0.0


def test_oversize_inputs_get_413_or_422_with_a_clear_message(reliability_service) -> None:  # type: ignore[no-untyped-def]
    service = reliability_service(
        ROLESCOPE_MAX_BODY_BYTES="4096",
        ROLESCOPE_MAX_MESSAGE_CHARS="100",
        ROLESCOPE_MAX_TURNS_PER_SESSION="4",
    )
    with httpx.Client(base_url=service.url, timeout=30) as client:
        big = client.post("/v1/chat", content=b'{"message": "' + b"x" * 10_000 + b'"}',
                          headers={"Content-Type": "application/json"})
        assert big.status_code == 413
        assert "4096 bytes" in big.json()["error"]["message"]
        long = client.post("/v1/chat", json={"message": "y" * 101, "role": "fast"})
        assert long.status_code in (413, 422)
        assert "100" in long.json()["error"]["message"]
        first = client.post("/v1/chat", json={"message": "one", "role": "fast"})
        session_id = first.json()["session_id"]
        second = client.post("/v1/chat", json={"message": "two", "session_id": session_id})
        assert second.status_code == 200
        full = client.post("/v1/chat", json={"message": "three", "session_id": session_id})
        assert full.status_code == 422
        assert full.json()["error"]["code"] == "session_full"
        assert rejected(client.get("/metrics").text, "too_large") >= 1

    # A declared 100 MB body is refused from its headers, before any of it is sent.
    address = urlsplit(service.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000000\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 413")


def test_replies_never_exceed_the_token_cap(reliability_service) -> None:  # type: ignore[no-untyped-def]
    service = reliability_service(ROLESCOPE_MAX_OUTPUT_TOKENS="7")
    body = {"message": "tell me everything", "role": "fast"}
    reply = httpx.post(f"{service.url}/v1/chat", json=body, timeout=30)
    assert reply.status_code == 200
    assert 0 < reply.json()["usage"]["output_tokens"] <= 7


def test_beyond_the_concurrency_limit_the_service_answers_503_with_retry_after(reliability_service) -> None:  # type: ignore[no-untyped-def]
    limit = 4
    service = reliability_service(ROLESCOPE_CONCURRENCY_LIMIT=str(limit))

    async def run() -> tuple[list[httpx.Response], list[float], str]:
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
            # Hold every slot with slow streams, then knock.
            holders = []
            for _ in range(limit):
                hold = {"message": "hold", "role": "slow", "stream": True}
                stream = client.stream("POST", "/v1/chat", json=hold)
                response = await stream.__aenter__()
                assert response.status_code == 200
                holders.append(stream)
            refused, latencies = [], []
            for _ in range(20):
                started = time.perf_counter()
                response = await client.post("/v1/chat", json={"message": "knock", "role": "fast"})
                latencies.append(time.perf_counter() - started)
                refused.append(response)
            health = await client.get("/healthz")
            assert health.status_code == 200
            for stream in holders:
                await stream.__aexit__(None, None, None)
            return refused, latencies, (await client.get("/metrics")).text

    refused, latencies, metrics_text = asyncio.run(run())
    assert {r.status_code for r in refused} == {503}
    assert all(r.headers.get("retry-after") for r in refused)
    assert {r.json()["error"]["code"] for r in refused} == {"overloaded"}
    assert rejected(metrics_text, "overload") >= 20
    print(f"503 latency: median {sorted(latencies)[len(latencies) // 2] * 1000:.1f} ms")
