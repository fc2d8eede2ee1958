"""Planted canary PII and secrets never reach captured traffic, spans, logs or metric labels."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx

from rolescope.reliability.otlp_sink import OtlpSink

CANARIES = {
    "email": "canary.person.7731@example.org",
    "card": "4111 1111 1111 1111",
    "phone": "+1 415 555 0199",
    "token": "sk-canary0123456789abcdefcanary",
    "client": "canary-client-id-9917",
}


def test_canaries_never_leave_the_request(reliability_service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sink = OtlpSink().start("up")
    capture = tmp_path / "capture" / "shadow.jsonl"
    try:
        service = reliability_service(
            ROLESCOPE_CAPTURE_PATH=str(capture),
            ROLESCOPE_CAPTURE_SAMPLE="1",
            ROLESCOPE_CAPTURE_KEY=secrets.token_hex(32),
            ROLESCOPE_ACCESS_LOG="true",
            ROLESCOPE_LOG_LEVEL="info",
            OTEL_EXPORTER_OTLP_ENDPOINT=sink.endpoint,
            OTEL_TRACES_SAMPLER="always_on",
            OTEL_BSP_SCHEDULE_DELAY="100",
        )
        message = (
            f"Write to me at {CANARIES['email']}, card {CANARIES['card']}, call {CANARIES['phone']}, "
            f"my key is Bearer {CANARIES['token']}"
        )
        headers = {"X-Client-Id": CANARIES["client"]}
        with httpx.Client(base_url=service.url, timeout=30, headers=headers) as client:
            for _ in range(3):
                assert client.post("/v1/chat", json={"message": message, "role": "fast"}).status_code == 200
            with client.stream("GET", "/v1/chat", params={"message": message, "role": "fast"}) as streamed:
                streamed.read()
            # An unknown role named like PII must not become a metric label value.
            unknown = client.post("/v1/chat", json={"message": "hi", "role": CANARIES["email"]})
            assert unknown.status_code == 404
            metrics_text = client.get("/metrics").text
        deadline = time.monotonic() + 10
        while sink.requests == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        service.terminate(15)  # flushes spans and capture
        exported = sink.received()
    finally:
        sink.stop()

    assert exported, "no spans reached the collector"
    assert capture.exists() and capture.read_text().strip(), "nothing was captured"
    places = {
        "captured traffic": capture.read_bytes(),
        "exported spans": exported,
        "service logs": service.logs().encode(),
        "metrics": metrics_text.encode(),
    }
    leaks = [
        f"{kind} in {place}"
        for place, content in places.items()
        for kind, canary in CANARIES.items()
        if any(form.encode() in content for form in (canary, quote(canary), quote_plus(canary)))
    ]
    assert leaks == []
