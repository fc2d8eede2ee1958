"""`/metrics` on a port of its own: served there, 404 on the API port, open without a key."""

from __future__ import annotations

import httpx

from rolescope.reliability.process import free_port


def test_metrics_move_to_their_own_port_and_stay_open_with_keys_on(reliability_service) -> None:  # type: ignore[no-untyped-def]
    metrics_port = free_port()
    key = "k" * 32
    service = reliability_service(ROLESCOPE_METRICS_PORT=str(metrics_port), ROLESCOPE_API_KEYS=key)
    chat = httpx.post(f"{service.url}/v1/chat", json={"message": "hi", "role": "fast"},
                      headers={"X-API-Key": key}, timeout=30)
    assert chat.status_code == 200
    scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
    assert scraped.status_code == 200
    assert "rolescope_http_requests_total" in scraped.text
    assert httpx.get(f"{service.url}/metrics", timeout=10).status_code == 404
