"""The OTLP endpoint down, black-holed, then back, under load: no failed request, drops counted."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rolescope.reliability.telemetry_faults import telemetry_faults_run


def test_a_failing_trace_collector_never_fails_a_request(tmp_path: Path) -> None:
    figures = asyncio.run(telemetry_faults_run(tmp_path))
    assert figures["otlp_requests_ok"] > 0
    assert figures["otlp_failed_requests"] == 0
    # What could not be exported was dropped and counted ...
    assert figures["otlp_spans_dropped"] > 0
    # ... and export resumed once the collector was back.
    assert figures["otlp_exports_after_back"] > 0
    # The span queue is bounded (512 here), so memory cannot grow with the outage.
    assert figures["otlp_peak_rss_growth_mb"] < 64
