"""The figures of a reliability run (chaos, overload, soak) as one table on the terminal."""

from __future__ import annotations


def print_table(figures: dict[str, float], title: str = "rolescope chaos") -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in figures.items():
        table.add_row(name, f"{value:g}")
    Console().print(table)
