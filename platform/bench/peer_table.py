"""Tables of the peer agreement benchmark: tools side by side, each one's difference from the reference."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.table import Table

from rolescope.bench.peer_compare import (
    FIGURE_LABELS,
    FIGURES,
    PERCENTILES,
    Difference,
    Percentiles,
    differences,
    tolerance_ms,
)

Views = Mapping[str, Mapping[str, Percentiles]]  # column name -> figure -> percentile -> ms
NOT_MEASURED = "—"


def format_ms(value: float | None) -> str:
    return NOT_MEASURED if value is None else f"{value:.1f}"


def format_difference(diff: Difference | None) -> str:
    """`+1.2 (+3%) ok`, or `... over` when outside the tolerance; milliseconds."""
    if diff is None:
        return NOT_MEASURED
    verdict = "ok" if diff.within else "over"
    share = f"{diff.delta_share * 100:+.0f}%" if diff.reference_ms else "n/a"
    return f"{diff.delta_ms:+.1f} ({share}) {verdict}"


def format_error(measured: float | None, truth: float) -> str:
    if measured is None:
        return NOT_MEASURED
    return f"{measured:.1f} ({measured - truth:+.1f})"


def agreement_table(title: str, views: Views, reference: str, compared: Sequence[str]) -> Table:
    """Rows per figure and percentile; a column per view, then each compared tool's difference."""
    table = Table(title=title, title_justify="left")
    table.add_column("ms")
    for name in views:
        table.add_column(name, justify="right")
    for name in compared:
        table.add_column(f"{name} − {reference}", justify="right")
    found = {
        name: {(d.figure, d.percentile): d for d in differences(views[name], views[reference])}
        for name in compared
        if name in views and reference in views
    }
    for figure in FIGURES:
        for p in PERCENTILES:
            key = f"p{p}"
            cells = [format_ms(view.get(figure, {}).get(key)) for view in views.values()]
            deltas = [format_difference(found.get(name, {}).get((figure, key))) for name in compared]
            table.add_row(f"{FIGURE_LABELS[figure]} {key}", *cells, *deltas)
    table.caption = (
        f"goal: within 10 % of {reference} or {tolerance_ms(0):.0f} ms, whichever is larger; "
        "server: histogram_quantile over /metrics bucket deltas of the reference's windows "
        "(resolution limited by the buckets)"
    )
    return table


def truth_table(title: str, views: Views, truth_ms: Mapping[str, float]) -> Table:
    """Each tool's reading against a server whose timing is known: measured (measured − truth)."""
    table = Table(title=title, title_justify="left")
    table.add_column("ms")
    table.add_column("truth", justify="right")
    for name in views:
        table.add_column(name, justify="right")
    for figure in FIGURES:
        if figure not in truth_ms:
            continue
        for p in PERCENTILES:
            key = f"p{p}"
            cells = [format_error(view.get(figure, {}).get(key), truth_ms[figure]) for view in views.values()]
            table.add_row(f"{FIGURE_LABELS[figure]} {key}", f"{truth_ms[figure]:.1f}", *cells)
    return table


def rows_as_text(table: Table) -> list[list[str]]:
    """The cells of a table as plain strings (for tests and logs)."""
    columns = [[str(cell) for cell in column.cells] for column in table.columns]
    return [list(row) for row in zip(*columns, strict=True)]
