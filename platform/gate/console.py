"""The verdict on a terminal: one Rich table, failures first, then the functions to look at."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rolescope.gate.judge import headline
from rolescope.gate.model import CheckResult, Verdict


def _figure(check: CheckResult) -> tuple[str, str]:
    if check.kind == "capacity":
        return f"{check.figure:.3g} req/s", f"≥ {check.limit:.3g} req/s"
    if check.kind == "slo":
        return (
            f"{100 * check.figure:.2f} %",
            f"{'≥' if check.direction == 'min' else '≤'} {100 * check.limit:.2f} %",
        )
    if check.unit == "absolute" and not check.statistics.get("figure_unit"):
        return f"{100 * check.figure:+.2f} pp", f"≤ {100 * check.limit:+.2f} pp"
    return f"{100 * check.figure:+.2f} %", f"≤ {100 * check.limit:+.2f} %"


def print_verdict(console: Console, verdict: Verdict) -> None:
    table = Table(title="rolescope gate", title_justify="left", expand=False)
    for column in ("", "check", "figure", "limit", "detail"):
        table.add_column(column, overflow="fold")
    for check in sorted(verdict.checks, key=lambda c: c.passed):
        figure, limit = _figure(check)
        mark = "[green]✔[/]" if check.passed else "[bold red]✘[/]"
        table.add_row(mark, escape(check.name), figure, limit, escape(check.message))
    console.print(table)
    for layer in verdict.layer_shifts:
        if layer.significant and layer.direction == "grew":
            console.print(
                f"  the [bold]{layer.layer}[/] layer grew: share of CPU samples "
                f"{100 * layer.baseline_share:.1f} % → {100 * layer.candidate_share:.1f} %",
                highlight=False,
            )
    for suspect in verdict.suspects:
        console.print(
            f"  look at [bold]{escape(suspect.function)}[/]: share of CPU samples "
            f"{100 * suspect.reference_share:.1f} % → {100 * suspect.candidate_share:.1f} %",
            highlight=False,
        )
    for note in verdict.notes:
        console.print(f"  [dim]note: {escape(note)}[/]", highlight=False)
    style = "bold green" if verdict.passed else "bold red"
    console.print(f"[{style}]{escape(headline(verdict))}[/]", highlight=False)
