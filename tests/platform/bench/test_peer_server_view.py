"""The server's histogram view: bucket deltas between two scrapes and Prometheus-style quantiles."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from rolescope.bench.peer_server_view import (
    add_buckets,
    bucket_delta,
    histogram_buckets,
    histogram_quantile,
    server_percentiles,
    window_delta,
)
from rolescope.exporters import names


def _exposition(ttft_values: list[float], roles: tuple[str, ...] = ("sherlock",)) -> str:
    registry = CollectorRegistry()
    ttft = Histogram(names.GENAI_TTFT, "ttft", ["role"], buckets=names.GENAI_TTFT_BUCKETS, registry=registry)
    for index, value in enumerate(ttft_values):
        ttft.labels(roles[index % len(roles)]).observe(value)
    return generate_latest(registry).decode()


def test_buckets_are_summed_over_every_label_set() -> None:
    text = _exposition([0.03, 0.03, 0.5, 0.5], roles=("sherlock", "watson"))
    buckets = histogram_buckets(text, names.GENAI_TTFT)
    assert buckets[0.04] == 2
    assert buckets[math.inf] == 4


def test_a_window_counts_only_the_requests_between_the_two_scrapes() -> None:
    before = _exposition([5.0] * 10)
    after = _exposition([5.0] * 10 + [0.03] * 4)
    delta = window_delta(before, after)
    assert delta["ttft"][math.inf] == 4
    assert delta["ttft"][0.02] == 0
    assert server_percentiles(delta, (0.5,))["ttft"]["p50"] == pytest.approx(30.0)


def test_quantile_interpolates_linearly_inside_a_bucket() -> None:
    buckets = {0.1: 0.0, 0.2: 100.0, math.inf: 100.0}
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.15)
    assert histogram_quantile(0.9, buckets) == pytest.approx(0.19)


def test_quantile_in_the_infinite_bucket_is_the_highest_finite_bound() -> None:
    assert histogram_quantile(0.99, {0.1: 10.0, 0.2: 50.0, math.inf: 100.0}) == 0.2


def test_no_samples_give_no_estimate_and_no_percentile() -> None:
    empty = {0.1: 0.0, math.inf: 0.0}
    assert histogram_quantile(0.5, empty) is None
    assert server_percentiles({"ttft": empty}, (0.5, 0.9)) == {"ttft": {}}


def test_quantile_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        histogram_quantile(1.5, {math.inf: 1.0})


def test_deltas_of_several_windows_add_up() -> None:
    first = bucket_delta({0.1: 1.0, math.inf: 2.0}, {0.1: 3.0, math.inf: 5.0})
    assert add_buckets(first, first) == {0.1: 4.0, math.inf: 6.0}
