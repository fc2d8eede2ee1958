"""The preview's pure parts: variables, legends, heatmap buckets, units, titles, the index page."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rolescope.alerts.spec import load_slo_spec
from rolescope.dashboards.build import build_all, iter_panels
from rolescope.dashboards.common import NO_ROLE_NAME
from rolescope.dashboards.preview import (
    Rendered,
    bucket_counts,
    draw_panel,
    index_html,
    layout,
    series_name,
)
from rolescope.dashboards.promql import Series, legend, render_for_prometheus
from rolescope.dashboards.slos import SLOS_UID
from rolescope.dashboards.units import format_value, tick_labels
from rolescope.exporters import names


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


# --- units, titles and names a person reads ----------------------------------------------


def test_values_are_formatted_in_the_units_grafana_prints_not_as_unit_ids() -> None:
    assert format_value(1.0, "percentunit") == "100%"
    assert format_value(0.9995, "percentunit") == "99.95%"
    assert format_value(0.0, "percentunit") == "0%"
    assert format_value(4.0, "short") == "4"
    assert format_value(1234.0, "short") == "1.23 K"
    assert format_value(13.333, "reqps") == "13.3 req/s"
    assert format_value(0.25, "s") == "250 ms"
    assert format_value(0.0004, "s") == "400 µs"
    assert format_value(2.5, "s") == "2.5 s"
    assert format_value(90.0, "s") == "1.5 min"
    assert format_value(67 * 2**20, "bytes") == "67 MiB"
    assert format_value(1500.0, "bytes") == "1.46 KiB"
    assert format_value(1500.0, "decbytes") == "1.5 kB"
    assert format_value(14.4, "x") == "14.4×"
    assert format_value(math.nan, "s") == "no value"


def test_axis_ticks_get_enough_digits_to_tell_neighbours_apart() -> None:
    ticks = [66.7 * 2**20, 66.75 * 2**20, 66.8 * 2**20, 66.85 * 2**20]
    labels = tick_labels(ticks, "bytes")
    assert len(set(labels)) == len(labels)
    assert all(label.endswith(" MiB") for label in labels)


def test_every_repeated_slo_panel_is_titled_with_its_slo() -> None:
    spec = load_slo_spec()
    views = layout(SLOS_UID, build_all(spec)[SLOS_UID])
    for slo in spec.slos:
        mine = [v for v in views if v.row.startswith(f"{slo.name} — ")]
        assert len(mine) == 6
        assert all(v.shown_title == f"{slo.name}: {v.title}" for v in mine)
    firing = next(v for v in views if v.title == "Firing SLO alerts")
    assert firing.shown_title == "Firing SLO alerts" and firing.row == "Alerts"


def test_titles_that_do_not_repeat_stay_as_the_dashboard_names_them() -> None:
    views = layout("rolescope-overview", build_all()["rolescope-overview"])
    assert all(v.shown_title == v.title for v in views)
    assert {v.row for v in views} >= {"Now", "Rate, errors, duration per role"}


def test_the_unknown_role_series_is_named_for_what_it_counts() -> None:
    overview = build_all()["rolescope-overview"]
    panel = next(p for p in iter_panels(overview) if p.get("title") == "Request duration by role")
    assert series_name(panel, "p95 {{role}}", {"role": names.UNKNOWN_ROLE}) == f"p95 {NO_ROLE_NAME}"
    assert series_name(panel, "p95 {{role}}", {"role": "sherlock"}) == "p95 sherlock"


def _texts(figure: Any) -> list[str]:
    figure.canvas.draw()
    ax = figure.axes[0]
    found = [t.get_text() for t in ax.texts] + [ax.get_title(loc="left")]
    found += [label.get_text() for label in ax.get_yticklabels()]
    legend = ax.get_legend()
    if legend is not None:
        found += [t.get_text() for t in legend.get_texts()]
    return found


def test_a_stat_panel_shows_its_value_in_its_unit_under_its_slo_title() -> None:
    views = layout(SLOS_UID, build_all()[SLOS_UID])
    view = next(v for v in views if v.shown_title == "chat-availability: SLI over the period")
    figure, headline = draw_panel(view, [("value", Series({}, [(100.0, 1.0)]))], None, end=100.0)
    assert headline == "100%"
    texts = _texts(figure)
    assert "100%" in texts and "chat-availability: SLI over the period" in texts
    assert not any("percentunit" in text for text in texts)


def test_a_time_series_axis_reads_in_requests_per_second() -> None:
    overview = build_all()["rolescope-overview"]
    view = next(v for v in layout("rolescope-overview", overview) if v.title == "Requests per second by role")
    points = [(float(t), 10.0 + t / 10) for t in range(0, 60, 5)]
    results = [
        (series_name(view.panel, "{{role}}", {"role": role}), Series({"role": role}, points))
        for role in ("sherlock", names.UNKNOWN_ROLE)
    ]
    figure, _ = draw_panel(view, results, None, end=60.0)
    texts = _texts(figure)
    ticks = [t for t in texts if t.endswith(" req/s")]
    assert len(ticks) >= 3
    assert NO_ROLE_NAME in texts and names.UNKNOWN_ROLE not in texts
    assert not any("reqps" in text for text in texts)


def test_index_groups_panels_under_their_rows_and_escapes_what_it_shows(tmp_path: Path) -> None:
    dashboards = build_all()
    slos = dict(dashboards[SLOS_UID])
    slos["description"] = "<script>alert(1)</script>"
    dashboards = {SLOS_UID: slos}
    rendered = [
        Rendered(SLOS_UID, v.title, tmp_path / SLOS_UID / f"{i}.png", 1, None, v.row, v.shown_title, "")
        for i, v in enumerate(layout(SLOS_UID, slos))
    ]
    html = index_html(tmp_path, dashboards, rendered)
    assert html.count("<img") == len(rendered)
    assert "<h3>chat-availability — objective 99.9 % over 30d</h3>" in html
    assert 'alt="inference-timeouts: Burn rate by window"' in html
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "grid-column: span 6" in html and "grid-column: span 12" in html
