"""Client and server TTFT of the same request, joined by trace id through the service's own spans."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from rolescope.capacity.span_receiver import SpanReceiver
from rolescope.rundir import REPORT_FILE, SAMPLES_FILE, SUMMARY_FILE, read_samples

pytestmark = pytest.mark.timeout(300)


def test_a_capacity_run_joins_every_streamed_request_to_the_services_span(
    tmp_path: Path, fast_roles_path: Path, one_step_capacity
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    outcome = one_step_capacity(out, roles=fast_roles_path, join_traces=True)
    step = outcome.steps[0]
    samples = read_samples(out / "load-1" / SAMPLES_FILE)
    streamed = [s for s in samples if s.ok and s.ttft_s is not None]
    assert streamed and all(s.trace_id and len(s.trace_id) == 32 for s in streamed)
    join = step.trace_join
    assert join is not None and join["requests_with_trace_id"] == step.client["ttft_s"]["count"]
    # Every span arrives (100 % sampling); allow a straggler on a loaded machine.
    assert join["coverage"] >= 0.95, join
    spread = join["client_minus_server_ttft_s"]
    # The server's interval lies within the client's, so the difference cannot be negative; on loopback
    # at a low rate it is the network stack, the handler before inference and the load generator.
    assert join["min_s"] >= 0, join
    assert spread["p50"] < 0.05, join
    assert spread["p50"] < step.client["ttft_s"]["p50"]
    assert "joined by trace id" in (out / SUMMARY_FILE).read_text()
    assert "client against server TTFT" in (out / REPORT_FILE).read_text()
    document = json.loads((out / "capacity.json").read_text())
    assert document["steps"][0]["trace_join"]["joined"] == join["joined"]


def test_the_receiver_reads_otlp_json_as_a_foreign_service_may_send_it() -> None:
    trace_id = "5b8efff798038103d269b633813fc60c"
    export = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id.upper(),
                                "name": "llm_request",
                                "attributes": [
                                    {
                                        "key": "gen_ai.latency.time_to_first_token",
                                        "value": {"doubleValue": 0.125},
                                    },
                                    {"key": "gen_ai.request.model", "value": {"stringValue": "m"}},
                                ],
                            },
                            {"traceId": "00" * 16, "name": "other", "attributes": []},
                        ]
                    }
                ]
            }
        ]
    }
    with SpanReceiver() as receiver:
        response = httpx.post(receiver.endpoint, json=export, timeout=10)
        refused = httpx.post(
            receiver.endpoint, content=b"not protobuf", headers={"Content-Type": "application/x-protobuf"}
        )
        assert response.status_code == 200 and refused.status_code == 400
        assert receiver.ttft() == {trace_id: 0.125}
