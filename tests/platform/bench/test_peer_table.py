"""The printed tables: tools side by side with their difference from the reference, and error to truth."""

from __future__ import annotations

from rich.console import Console

from rolescope.bench.peer_compare import Difference
from rolescope.bench.peer_table import (
    NOT_MEASURED,
    agreement_table,
    format_difference,
    format_error,
    rows_as_text,
    truth_table,
)

AIPERF = {"ttft": {"p50": 150.0, "p90": 160.0, "p99": 170.0}, "itl": {"p50": 20.0}, "e2e": {"p50": 930.0}}
GUIDELLM = {"ttft": {"p50": 155.0, "p90": 190.0, "p99": 171.0}, "itl": {"p50": 20.5}, "e2e": {"p50": 940.0}}


def test_differences_show_milliseconds_share_and_verdict() -> None:
    assert format_difference(Difference("ttft", "p50", 155.0, 150.0)) == "+5.0 (+3%) ok"
    assert format_difference(Difference("ttft", "p90", 190.0, 160.0)) == "+30.0 (+19%) over"
    assert format_difference(None) == NOT_MEASURED


def test_agreement_table_has_a_row_per_figure_and_percentile_and_marks_what_is_missing() -> None:
    table = agreement_table(
        "t", {"aiperf": AIPERF, "guidellm": GUIDELLM}, "aiperf", ["guidellm", "rolescope"]
    )
    rows = {row[0]: row[1:] for row in rows_as_text(table)}
    assert len(rows) == 9
    assert rows["TTFT p50"] == ["150.0", "155.0", "+5.0 (+3%) ok", NOT_MEASURED]
    assert rows["TTFT p90"][2].endswith("over")
    assert rows["ITL (TPOT) p90"] == [NOT_MEASURED, NOT_MEASURED, NOT_MEASURED, NOT_MEASURED]


def test_truth_table_shows_each_reading_with_its_error() -> None:
    table = truth_table("t", {"aiperf": AIPERF, "rolescope": {}}, {"ttft": 150.0, "itl": 20.0})
    rows = {row[0]: row[1:] for row in rows_as_text(table)}
    assert rows["TTFT p90"] == ["150.0", "160.0 (+10.0)", NOT_MEASURED]
    assert rows["ITL (TPOT) p50"] == ["20.0", "20.0 (+0.0)", NOT_MEASURED]
    assert "end-to-end p50" not in rows
    assert format_error(149.25, 150.0) == "149.2 (-0.8)"


def test_tables_render_as_text() -> None:
    console = Console(width=160, record=True)
    console.print(agreement_table("side by side", {"aiperf": AIPERF}, "aiperf", []))
    text = console.export_text()
    assert "side by side" in text and "TTFT p50" in text and "150.0" in text
