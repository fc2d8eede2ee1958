"""The service's /metrics parsed into the figures capacity compares."""

from __future__ import annotations

import pytest

from rolescope.capacity.server_metrics import Histogram, histogram_quantile, parse_metrics, server_figures

TEXT = """\
# TYPE rolescope_http_requests_total counter
rolescope_http_requests_total{method="POST",role="curie",route="/v1/chat",status_class="2xx"} {ok}
rolescope_http_requests_total{method="POST",role="curie",route="/v1/chat",status_class="5xx"} {bad}
rolescope_http_requests_total{method="GET",role="<unknown>",route="/readyz",status_class="2xx"} 50
# TYPE rolescope_http_requests_in_flight gauge
rolescope_http_requests_in_flight{route="/v1/chat"} {flight}
rolescope_http_requests_in_flight{route="/metrics"} 1
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total {cpu}
# TYPE gen_ai_server_time_to_first_token_seconds histogram
gen_ai_server_time_to_first_token_seconds_bucket{le="0.1",role="a"} {b1}
gen_ai_server_time_to_first_token_seconds_bucket{le="0.5",role="a"} {b2}
gen_ai_server_time_to_first_token_seconds_bucket{le="+Inf",role="a"} {b2}
gen_ai_server_time_to_first_token_seconds_count{role="a"} {b2}
gen_ai_server_time_to_first_token_seconds_sum{role="a"} {total}
"""


def _text(**values: float) -> str:
    text = TEXT
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def test_a_step_is_the_difference_of_two_scrapes() -> None:
    start = parse_metrics(_text(ok=10, bad=0, flight=0, cpu=1.0, b1=10, b2=10, total=0.5), at=100.0)
    end = parse_metrics(_text(ok=100, bad=10, flight=4, cpu=3.0, b1=50, b2=110, total=20.5), at=110.0)
    figures = server_figures(start, end, in_flight=[2, 9, 4])
    assert figures["requests"] == 100 and figures["failures"] == 10
    assert figures["throughput_rps"] == pytest.approx(10.0)
    assert figures["in_flight_max"] == 9
    assert figures["cpu_utilization"] == pytest.approx(0.2)
    assert figures["cpu_ms_per_request"] == pytest.approx(20.0)
    ttft = figures["ttft_s"]
    assert ttft["count"] == 100 and ttft["mean"] == pytest.approx(0.2)
    # 40 of 100 new observations ≤ 0.1 s; the median lies 10/60 of the way into (0.1, 0.5].
    assert ttft["p50"] == pytest.approx(0.1 + 0.4 * 10 / 60)


def test_quantiles_interpolate_within_buckets_like_prometheus() -> None:
    histogram = Histogram(((1.0, 50.0), (2.0, 100.0), (float("inf"), 100.0)), 120.0, 100.0)
    assert histogram_quantile(0.5, histogram) == pytest.approx(1.0)
    assert histogram_quantile(0.75, histogram) == pytest.approx(1.5)
    assert histogram_quantile(0.5, Histogram((), 0.0, 0.0)) is None


def test_text_without_the_series_gives_empty_figures() -> None:
    snapshot = parse_metrics("# TYPE up gauge\nup 1\n", at=0.0)
    assert snapshot.chat_requests == 0 and snapshot.cpu_seconds is None and snapshot.histograms == {}
