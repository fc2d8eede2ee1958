"""The real role service, started with `rolescope serve`: /metrics, exemplars, spans, logs, Prometheus."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from rolescope.exporters import names
from rolescope.serving.launcher import launch_service

OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


def _chat(client: httpx.Client, **body: object) -> dict:
    response = client.post("/v1/chat", json={"message": "Who stole the pearl?", **body})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _series(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_metrics_spans_and_logs_of_real_requests(tmp_path: Path, fast_role: Path, otlp_receiver) -> None:  # type: ignore[no-untyped-def]
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.url,
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_SERVICE_NAME": "rolescope-test",
    }
    with (
        launch_service(
            roles_path=fast_role,
            db_path=tmp_path / "s.db",
            env=env,
            extra_args=["--log-level", "info", "--access-log"],
        ) as service,
        httpx.Client(base_url=service.url, timeout=10) as client,
    ):
        first = _chat(client)
        _chat(client, session_id=first["session_id"])
        with client.stream("POST", "/v1/chat", json={"message": "And the dog?", "stream": True}) as stream:
            events = "".join(stream.iter_text())
        assert "event: done" in events
        completion = client.post(
            "/v1/chat/completions",
            json={"model": "sherlock", "messages": [{"role": "user", "content": "Whose pipe is this?"}]},
        )
        assert completion.status_code == 200, completion.text
        assert client.get("/v1/sessions/" + first["session_id"]).status_code == 200
        assert client.get("/no/such/page").status_code == 404
        client.get("/healthz")
        text = client.get("/metrics", headers=OPENMETRICS).text
        # A bucket keeps only its latest exemplar, so which requests' ids remain depends on their
        # timings; every one that remains must be the id of a trace the collector received.
        exemplar_ids = set(re.findall(r'# \{trace_id="([0-9a-f]{32})"\}', text))
        spans = otlp_receiver.wait_for(
            lambda s: sum(x.name == "inference" for x in s) >= 4 and exemplar_ids <= {x.trace_id for x in s}
        )
        log = service.log()

    # Metrics: series, buckets at the SLO thresholds, exemplars pointing at real traces.
    chat_requests = _series(text, names.HTTP_REQUESTS_TOTAL + "{")
    assert any(
        'route="/v1/chat"' in s
        and 'status_class="2xx"' in s
        and 'role="sherlock"' in s
        and s.endswith(" 3.0")
        for s in chat_requests
    ), chat_requests
    assert any('route="/v1/sessions/{session_id}"' in s for s in chat_requests)
    assert any(f'route="{names.UNMATCHED_ROUTE}"' in s and 'status_class="4xx"' in s for s in chat_requests)
    ttft = _series(text, names.GENAI_TTFT + "_bucket")
    assert any('le="0.5"' in s and 'role="sherlock"' in s for s in ttft)
    assert any('le="5.0"' in s for s in _series(text, names.GENAI_REQUEST_DURATION + "_bucket"))
    assert any('le="5.0"' in s for s in _series(text, names.HTTP_REQUEST_DURATION + "_bucket"))
    assert _series(text, names.GENAI_TOKEN_USAGE + "{")
    assert _series(text, names.STORE_OPERATION_DURATION + "_count")
    assert _series(text, "process_cpu_seconds_total")
    assert exemplar_ids and exemplar_ids <= {s.trace_id for s in spans}, exemplar_ids

    # Traces: server span -> chat -> inference and session-store spans, one trace per request.
    trace_spans = [s for s in spans if s.trace_id == first["trace_id"]]
    by_name = {s.name: s for s in trace_spans}
    server, chat, inference = by_name["POST /v1/chat"], by_name["chat"], by_name["inference"]
    assert server.parent_span_id == ""
    assert chat.parent_span_id == server.span_id
    assert inference.parent_span_id == chat.span_id
    assert by_name["session_store.save_exchange"].parent_span_id == chat.span_id
    assert inference.attributes["gen_ai.operation.name"] == "chat"
    assert inference.attributes["gen_ai.request.model"] == "sherlock-sim-1"
    assert inference.attributes["gen_ai.provider.name"]
    assert inference.attributes["gen_ai.usage.input_tokens"] > 0
    assert inference.attributes["gen_ai.usage.output_tokens"] > 0
    assert server.service_name == "rolescope-test"
    assert not [s for s in spans if s.name.endswith(("/metrics", "/healthz", "/readyz"))]
    assert len({s.trace_id for s in spans if s.name == "POST /v1/chat"}) == 3
    # The OpenAI-compatible route's inference span carries the usage too.
    completion_trace = next(s.trace_id for s in spans if s.name == "POST /v1/chat/completions")
    completion_inference = next(s for s in spans if s.trace_id == completion_trace and s.name == "inference")
    assert completion_inference.attributes["gen_ai.usage.output_tokens"] > 0

    # Logs: JSON lines, and the request's lines carry the reply's trace id.
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(r.get("trace_id") == first["trace_id"] for r in records), log[-2000:]


def test_prometheus_scrapes_the_ttft_histogram(tmp_path: Path, fast_role: Path, prometheus_server) -> None:  # type: ignore[no-untyped-def]
    with (
        launch_service(roles_path=fast_role, db_path=tmp_path / "s.db") as service,
        httpx.Client(base_url=service.url, timeout=10) as client,
    ):
        for _ in range(5):
            _chat(client)
        prometheus = prometheus_server(targets=[f"127.0.0.1:{service.port}"])
        result = prometheus.wait_for(f'sum by (le) ({names.GENAI_TTFT}_bucket{{role="sherlock"}}) > 0')
        quantile = prometheus.query(f"histogram_quantile(0.9, sum by (le) ({names.GENAI_TTFT}_bucket))")
    assert {series["metric"]["le"] for series in result} >= {"0.5", "+Inf"}
    assert all(series["value"][1] == "5" for series in result)
    assert quantile and 0 < float(quantile[0]["value"][1]) <= 0.5


def _drive(url: str, requests: list[tuple[str, str, dict | None]], concurrency: int = 16) -> list[int]:
    """Send (method, path, json) requests with bounded concurrency; returns the status codes."""
    import asyncio

    async def run() -> list[int]:
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
            gate = asyncio.Semaphore(concurrency)

            async def one(method: str, path: str, body: dict | None) -> int:
                async with gate:
                    return (await client.request(method, path, json=body)).status_code

            return list(await asyncio.gather(*(one(*r) for r in requests)))

    return asyncio.run(run())


def _drops(text: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in _series(text, names.TELEMETRY_DROPPED_TOTAL + "{")
        if 'signal="spans"' in line
    )


@pytest.mark.parametrize("endpoint_fixture", ["refusing_endpoint", "black_hole_endpoint"])
def test_a_dead_exporter_costs_spans_never_requests(  # type: ignore[no-untyped-def]
    endpoint_fixture: str, request, tmp_path: Path, fast_role: Path
) -> None:
    endpoint = request.getfixturevalue(endpoint_fixture)
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_TRACES_SAMPLER": "always_on",
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "1",
        "OTEL_BSP_MAX_QUEUE_SIZE": "64",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "16",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    with launch_service(roles_path=fast_role, db_path=tmp_path / "s.db", env=env) as service:
        statuses = _drive(service.url, [("POST", "/v1/chat", {"message": f"case {n}"}) for n in range(300)])
        text = httpx.get(f"{service.url}/metrics", timeout=10).text
    assert statuses == [200] * 300
    assert _drops(text) > 0


_WRK_SCRIPTS = {
    # Every request gets a path or session id never seen before (a counter plus a random part).
    "paths": "n = 0\nrequest = function()\n n = n + 1\n"
    ' return wrk.format("GET", "/p" .. n .. "/" .. math.random(1, 1000000000))\nend\n',
    "sessions": "n = 0\nrequest = function()\n n = n + 1\n"
    ' return wrk.format("GET", "/v1/sessions/s" .. n .. "x" .. math.random(1, 1000000000))\nend\n',
    "chats": "n = 0\nrequest = function()\n n = n + 1\n"
    ' return wrk.format("POST", "/v1/chat", {["Content-Type"] = "application/json"},'
    ' \'{"message": "hello", "session_id": "c\' .. n .. "x" .. math.random(1, 1000000000) .. \'"}\')\nend\n',
}


def _wrk(url: str, script: Path, seconds: int) -> None:
    import shutil
    import subprocess

    wrk = shutil.which("wrk")
    if wrk is None:
        pytest.fail("wrk is not installed: run `make system-deps` (Debian package wrk)")
    subprocess.run(
        [wrk, "-t1", "-c16", f"-d{seconds}s", "-s", str(script), url],
        check=True,
        capture_output=True,
        timeout=seconds + 30,
    )


def _value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in _series(text, name + "{"):
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_ten_thousand_session_ids_and_random_paths_add_no_series(tmp_path: Path, fast_role: Path) -> None:
    with launch_service(roles_path=fast_role, db_path=tmp_path / "s.db") as service:
        warm = [
            ("POST", "/v1/chat", {"message": "hi", "session_id": "warm-session-0001"}),
            ("GET", "/v1/sessions/warm-session-0002", None),
            ("GET", "/warm/404", None),
            ("GET", "/metrics", None),
        ]
        _drive(service.url, warm, concurrency=1)

        def scrape() -> tuple[str, set[str]]:
            text = httpx.get(f"{service.url}/metrics", timeout=10).text
            return text, {
                line.rsplit(" ", 1)[0]
                for line in text.splitlines()
                if line.startswith(("rolescope_", "gen_ai_"))
            }

        _, before = scrape()
        for name in _WRK_SCRIPTS:
            (tmp_path / f"{name}.lua").write_text(_WRK_SCRIPTS[name])
        _wrk(service.url, tmp_path / "chats.lua", 2)
        # wrk runs for a time, not a count: repeat short runs until 10,000 distinct ids went in (bounded).
        distinct = 0.0
        for round_ in range(20):
            _wrk(service.url, tmp_path / ("sessions.lua" if round_ % 2 else "paths.lua"), 2)
            text, after = scrape()
            distinct = _value(text, names.HTTP_REQUESTS_TOTAL, route=names.UNMATCHED_ROUTE) + _value(
                text, names.HTTP_REQUESTS_TOTAL, route="/v1/sessions/{session_id}", status_class="4xx"
            )
            if distinct >= 10_000 and round_ % 2:
                break
    assert distinct >= 10_000, distinct
    assert _value(text, names.HTTP_REQUESTS_TOTAL, route="/v1/chat", status_class="2xx") > 100
    assert after == before, sorted(after - before)[:10]


def test_two_workers_report_totals_across_processes(tmp_path: Path, fast_role: Path) -> None:
    # No port given: `--port 0` with several workers must still announce the port it serves on.
    shared = tmp_path / "metrics"
    shared.mkdir()
    (shared / "counter_999999.db").write_bytes(b"stale from an earlier run")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared)}
    total = 40
    with launch_service(
        roles_path=fast_role, db_path=tmp_path / "s.db", env=env, extra_args=["--workers", "2"]
    ) as service:
        for n in range(total):
            # A fresh connection per request lets the kernel spread them over both workers.
            with httpx.Client(base_url=service.url, timeout=10) as client:
                assert client.post("/v1/chat", json={"message": f"case {n}"}).status_code == 200
        scrapes = [httpx.get(f"{service.url}/metrics", timeout=10).text for _ in range(4)]
        writers = {p.name.rsplit("_", 1)[1] for p in shared.glob("counter_*.db")}
    assert "999999.db" not in writers  # the stale file was removed at start
    assert len(writers) >= 2, writers  # both workers counted something
    for text in scrapes:  # whichever worker answers, the totals are the same
        chat = [s for s in _series(text, names.HTTP_REQUESTS_TOTAL + "{") if 'route="/v1/chat"' in s]
        assert sum(float(s.rsplit(" ", 1)[1]) for s in chat) == total
        ttft_count = _series(text, names.GENAI_TTFT + "_count")
        assert sum(float(s.rsplit(" ", 1)[1]) for s in ttft_count) == total
        assert " # {" not in text


def test_a_stream_that_ends_in_an_error_event_counts_as_a_server_error(
    tmp_path: Path, fast_role: Path
) -> None:
    # The SSE status line said 200 before the reply failed; the SLOs must still see the failure.
    with launch_service(
        roles_path=fast_role, db_path=tmp_path / "s.db", extra_args=["--fault", "error_rate=1"]
    ) as service, httpx.Client(base_url=service.url, timeout=10) as client:
        streamed = client.post(
            "/v1/chat", json={"message": "Who stole the pearl?"}, headers={"Accept": "text/event-stream"}
        )
        assert streamed.status_code == 200 and "event: error" in streamed.text
        # The request is counted when its handler returns, which can be just after the client
        # read the last event: poll briefly (bounded) instead of racing it.
        deadline = time.monotonic() + 10
        while True:
            text = client.get("/metrics").text
            counted = _value(text, names.HTTP_REQUESTS_TOTAL, route="/v1/chat")
            if counted or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert _value(text, names.HTTP_REQUESTS_TOTAL, route="/v1/chat", status_class="5xx") == 1
    assert _value(text, names.HTTP_REQUESTS_TOTAL, route="/v1/chat", status_class="2xx") == 0
