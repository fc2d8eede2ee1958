"""The load-generator ceiling: the server's truth, each step's judgement, the table, the recording server."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from rolescope.bench.ceiling_server import build_app
from rolescope.bench.ceiling_steps import Step, ceiling, ceiling_table, judge, server_truth
from rolescope.bench.peer_table import rows_as_text

STEP = Step(rate=10.0, itl_ms=10.0, tokens=41)
FAST = Step(rate=50.0, itl_ms=10.0, tokens=41)


def test_server_truth_is_each_streams_mean_gap_and_the_streamed_token_rate() -> None:
    truth = server_truth([[0.0, 0.4, 41], [1.0, 1.8, 41], [2.0, 2.0, 1]])
    assert truth.itl_ms == (10.0, 20.0)
    assert truth.tokens_per_s == 83 / 2.0
    assert server_truth([]).tokens_per_s == 0.0


def test_a_step_passes_only_when_p50_and_p90_are_both_within_one_millisecond() -> None:
    truth = server_truth([[0.0, 0.4, 41]] * 10)
    assert judge("t", STEP, [10.5] * 10, 0, truth).passed
    slow_tail = judge("t", STEP, [10.2] * 8 + [13.0] * 2, 0, truth)
    assert not slow_tail.passed and "p90" in slow_tail.reason and "p50" not in slow_tail.reason
    assert slow_tail.errors_ms["p50"] == 10.2 - 10.0


def test_failed_requests_or_nothing_timed_fail_the_step() -> None:
    truth = server_truth([[0.0, 0.4, 41]])
    assert "2 failed requests" in judge("t", STEP, [10.0], 2, truth).reason
    assert judge("t", STEP, [], 0, truth).reason == "no ITL measured"
    assert judge("t", STEP, [10.0], 0, server_truth([])).reason == "server sent no stream"


def test_the_ceiling_is_the_highest_offered_rate_of_a_passing_step_and_the_table_shows_both_tools() -> None:
    slow = server_truth([[0.0, 0.4, 41], [0.5, 0.9, 41]])
    fast = server_truth([[0.0, 0.4, 41]] * 50)
    judgements = [
        judge("rolescope", STEP, [10.0, 10.0], 0, slow),
        judge("aiperf", STEP, [10.3, 10.3], 0, slow),
        judge("rolescope", FAST, [10.0] * 50, 0, fast),
        judge("aiperf", FAST, [14.0] * 50, 0, fast),
    ]
    assert ceiling(judgements, "rolescope") == FAST.offered_tokens_per_s == 2050
    assert ceiling(judgements, "aiperf") == STEP.offered_tokens_per_s
    assert ceiling(judgements, "nobody") == 0.0
    rows = rows_as_text(ceiling_table(judgements, ("rolescope", "aiperf")))
    assert len(rows) == 3
    assert rows[0][1] == "410" and rows[1][1] == "2050"
    assert rows[1][3].endswith("ok") and "FAIL" in rows[1][5] and "+4.00/+4.00" in rows[1][5]
    assert rows[2][0] == "ceiling (offered tok/s)" and rows[2][2] == "2050" and rows[2][4] == "410"


def test_the_server_streams_openai_chunks_and_records_its_send_times(
    asgi_server: Callable[..., Any],
) -> None:
    server = asgi_server(build_app(ttft_s=0.001, itl_s=0.01, tokens=6))
    body = {"model": "m", "stream": True, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=10)
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "tok " * 5
    assert chunks[-1]["usage"]["completion_tokens"] == 5
    [(first, last, count)] = httpx.get(f"{server.url}/record", timeout=10).json()["streams"]
    assert count == 5 and (last - first) >= 4 * 0.01
    httpx.post(f"{server.url}/reset", timeout=10)
    assert httpx.get(f"{server.url}/record", timeout=10).json()["streams"] == []
