"""The pure parts of the preview: variable substitution, legends, de-cumulated heatmap buckets."""

from __future__ import annotations

import math

from rolescope.dashboards.preview import bucket_counts
from rolescope.dashboards.promql import Series, legend, render_for_prometheus


def test_grafana_variables_become_plain_promql() -> None:
    expr = 'sum(rate(x_bucket{role=~"$role"}[$__rate_interval])) / $__range'
    assert (
        render_for_prometheus(expr, rate_interval="30s", range_="1h")
        == 'sum(rate(x_bucket{role=~".*"}[30s])) / 1h'
    )


def test_legend_format_is_filled_from_labels() -> None:
    assert legend("p95 {{role}}", {"role": "sherlock", "le": "1"}) == "p95 sherlock"
    assert legend("", {"b": "2", "a": "1"}) == "a=1, b=2"
    assert legend("", {}) == "value"


def test_cumulative_buckets_become_counts_per_bucket_aligned_in_time() -> None:
    rows = [
        Series({"le": "+Inf"}, [(1.0, 10.0), (2.0, 20.0)]),
        Series({"le": "0.5"}, [(1.0, 4.0), (2.0, 15.0)]),
        Series({"le": "0.1"}, [(2.0, 5.0)]),  # no point at t=1: counts as 0
        Series({"le": "1.0"}, [(1.0, 9.0), (2.0, math.nan)]),
    ]
    times, counts = bucket_counts(rows)
    assert times == [1.0, 2.0]
    assert counts == [[0.0, 5.0], [4.0, 10.0], [5.0, 0.0], [1.0, 20.0]]
