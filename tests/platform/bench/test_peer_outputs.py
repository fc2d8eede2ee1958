"""Each tool's output files, as captured from real runs of AIPerf 0.13.0, GuideLLM 0.8.1 and rolescope."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from rolescope.bench import peer_aiperf, peer_guidellm
from rolescope.bench.peer_rolescope import parse_samples
from rolescope.rundir import RequestSample

FIXTURES = Path(__file__).parent / "fixtures"


def _records() -> list[dict[str, object]]:
    text = (FIXTURES / "aiperf_profile_export.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_aiperf_records_give_every_request_its_ttft_itl_and_latency_in_ms() -> None:
    figures = peer_aiperf.parse_records((FIXTURES / "aiperf_profile_export.jsonl").read_text())
    records = _records()
    assert figures.requests == len(records) == 4
    assert figures.failures == 0
    first = records[0]["metrics"]
    assert isinstance(first, dict)
    assert figures.samples_ms["ttft"][0] == pytest.approx(first["time_to_first_token"]["value"])
    assert figures.samples_ms["itl"][0] == pytest.approx(first["inter_token_latency"]["value"])
    assert figures.samples_ms["e2e"][0] == pytest.approx(first["request_latency"]["value"])
    # AIPerf's ITL is per request: (latency - TTFT) / (output tokens - 1).
    osl = first["output_sequence_length"]["value"]
    latency, ttft = first["request_latency"]["value"], first["time_to_first_token"]["value"]
    assert figures.samples_ms["itl"][0] == pytest.approx((latency - ttft) / (osl - 1))


def test_aiperf_failed_requests_are_counted_not_timed() -> None:
    good = (FIXTURES / "aiperf_profile_export.jsonl").read_text().splitlines()[0]
    failed = json.dumps({"metadata": {}, "metrics": {}, "error": {"code": 500, "message": "boom"}})
    figures = peer_aiperf.parse_records(f"{good}\n{failed}\n")
    assert figures.failures == 1
    assert figures.requests == 1


def test_aiperf_values_in_nanoseconds_are_converted() -> None:
    line = json.dumps({"metrics": {"time_to_first_token": {"value": 2_500_000, "unit": "ns"}}})
    assert peer_aiperf.parse_records(line).samples_ms["ttft"] == pytest.approx([2.5])


def test_aiperf_summary_gives_its_own_percentiles() -> None:
    document = json.loads((FIXTURES / "aiperf_profile_export_aiperf.json").read_text())
    summary = peer_aiperf.parse_summary(document)
    assert summary["ttft"]["p50"] == document["time_to_first_token"]["p50"]
    assert summary["e2e"]["p99"] == document["request_latency"]["p99"]
    assert set(summary["itl"]) == {"p50", "p90", "p99"}


def test_aiperf_summary_in_another_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="expected 'ms'"):
        peer_aiperf.parse_summary({"request_latency": {"unit": "s", "p50": 1.0}})


def test_aiperf_command_line_is_an_open_model_at_the_workload_rate() -> None:
    from rolescope.bench.peer_workload import Workload

    argv = peer_aiperf.aiperf_argv(
        Path("/venv/bin/aiperf"),
        "http://127.0.0.1:1",
        Workload(4, 12, 64, 32, "sherlock"),
        "org/tok",
        Path("a"),
    )
    pairs = dict(itertools.pairwise(argv))
    assert pairs["--request-rate"] == "4" and pairs["--arrival-pattern"] == "poisson"
    assert pairs["--isl"] == "64" and pairs["--osl"] == "32" and pairs["--benchmark-duration"] == "12"
    assert "--use-server-token-count" in argv and "--streaming" in argv


def _guidellm() -> dict[str, object]:
    document: dict[str, object] = json.loads((FIXTURES / "guidellm_benchmarks_lost_start.json").read_text())
    return document


def test_guidellm_requests_give_ttft_itl_and_latency_in_ms() -> None:
    document = _guidellm()
    figures = peer_guidellm.parse_benchmarks(document)
    requests = document["benchmarks"][0]["requests"]["successful"]  # type: ignore[index]
    assert figures.requests == len(requests) == 3
    assert figures.samples_ms["ttft"][0] == pytest.approx(requests[0]["time_to_first_token_ms"])
    assert figures.samples_ms["itl"][0] == pytest.approx(requests[0]["inter_token_latency_ms"])
    assert figures.samples_ms["e2e"][0] == pytest.approx(requests[0]["request_latency"] * 1000)


def test_guidellm_summary_gives_its_own_percentiles_in_ms() -> None:
    document = _guidellm()
    summary = peer_guidellm.parse_summary(document)
    metrics = document["benchmarks"][0]["metrics"]  # type: ignore[index]
    ttft = metrics["time_to_first_token_ms"]["successful"]["percentiles"]
    latency = metrics["request_latency"]["successful"]["percentiles"]
    assert summary["ttft"]["p50"] == pytest.approx(ttft["p50"])
    assert summary["e2e"]["p90"] == pytest.approx(latency["p90"] * 1000)


def test_guidellm_run_whose_poisson_schedule_lost_its_start_is_recognised() -> None:
    document = _guidellm()
    assert peer_guidellm.lost_poisson_start(document)
    # The fixture keeps 3 of the run's requests over its 8 s window.
    assert peer_guidellm.offered_rate(document) == pytest.approx(3 / 8.0)
    fixed = json.loads(json.dumps(document))
    for request in fixed["benchmarks"][0]["requests"]["successful"]:
        request["info"]["timings"]["targeted_start"] += 1.8e9
    assert not peer_guidellm.lost_poisson_start(fixed)


def test_guidellm_scenario_routes_its_health_check_and_keeps_the_workload() -> None:
    from rolescope.bench.peer_workload import Workload

    spec = peer_guidellm.scenario(
        "http://127.0.0.1:1", Workload(4, 12, 64, 32, "sherlock"), "org/tok", Path("out.json"), "/readyz"
    )["spec"]
    assert spec["backend"]["api_routes"] == {"/health": "readyz"}
    assert spec["profile"] == {"kind": "poisson", "rate": 4}
    assert spec["data"][0]["prompt_tokens"] == 64 and spec["data"][0]["output_tokens"] == 32
    assert spec["constraints"] == [{"kind": "max_duration", "seconds": 12}]


def _sample(ok: bool, ttft: float | None, tpot: float | None, e2e: float) -> str:
    sample = RequestSample("stream", "stream", 0.0, 0.0, ok, 200 if ok else 500, e2e, ttft, tpot)
    return json.dumps(sample.to_dict())


def test_rolescope_samples_give_ttft_tpot_and_latency_in_ms_and_count_failures() -> None:
    lines = [_sample(True, 0.05, 0.01, 0.4), _sample(True, 0.06, None, 0.06), _sample(False, None, None, 1)]
    text = "\n".join(lines)
    figures = parse_samples(text)
    assert figures.samples_ms["ttft"] == pytest.approx([50.0, 60.0])
    assert figures.samples_ms["itl"] == pytest.approx([10.0])
    assert figures.samples_ms["e2e"] == pytest.approx([400.0, 60.0])
    assert figures.failures == 1


def test_guidellm_run_on_schedule_is_not_taken_for_a_lost_start() -> None:
    document = json.loads((FIXTURES / "guidellm_benchmarks.json").read_text())
    assert not peer_guidellm.lost_poisson_start(document)


def test_guidellm_requests_cut_at_the_end_of_the_window_are_noted_not_failed() -> None:
    document = json.loads((FIXTURES / "guidellm_benchmarks.json").read_text())
    figures = peer_guidellm.parse_benchmarks(document)
    assert figures.failures == 0
    assert figures.requests == 4
    assert figures.notes == ("1 requests cut at the end of a window",)
