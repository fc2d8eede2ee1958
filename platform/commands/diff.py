"""`rolescope diff`: compare a candidate's mirrored replies with the primary's, beyond the noise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from rolescope.diff.compare import DiffReport


def _print(console: Console, report: DiffReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    title = f"{report.pairs} pairs, {report.noise_pairs} noise pairs, tolerance {report.tolerance:.0%}"
    table = Table(title=title)
    columns = ("field", "differ", "rate", "noise", "beyond noise", "threshold", "primary → candidate", "")
    for column in columns:
        table.add_column(column, justify="left" if column in ("field", "") else "right")
    for item in report.fields:
        means = (
            f"{item.primary_mean:.4g} → {item.candidate_mean:.4g}"
            if item.primary_mean is not None and item.candidate_mean is not None
            else ""
        )
        verdict = "[red]FAIL[/red]" if item.exceeds else ("changed" if item.beyond_noise > 0 else "")
        table.add_row(
            item.field, f"{item.differing}/{item.compared}", f"{item.rate:.1%}", f"{item.noise_rate:.1%}",
            f"{item.beyond_noise:.1%}",
            "" if item.threshold is None else f"{item.threshold:.3g}",
            means,
            verdict,
        )
    console.print(table)
    for item in report.beyond_noise:
        console.print(f"[bold]{escape(item.field)}[/bold] differs in {item.rate:.1%} of pairs "
                      f"({item.noise_rate:.1%} between two primaries), for example:")
        for example in item.examples:
            console.print(f"  message {escape(example.message)!r}: primary {escape(example.primary)!r}, "
                          f"candidate {escape(example.candidate)!r}", soft_wrap=True)
    console.print("[green]no difference beyond the noise exceeds the tolerance[/green]" if report.passed
                  else "[red]a difference beyond the noise exceeds the tolerance[/red]")


def register(app: typer.Typer) -> None:
    @app.command("diff")
    def diff(
        pairs: Annotated[Path, typer.Argument(help="mirrored pairs (JSONL, from `serve --mirror-pairs`)")],
        noise: Annotated[
            Path | None,
            typer.Option("--noise", help="pairs of the primary against itself: what differs by chance"),
        ] = None,
        roles: Annotated[
            Path | None,
            typer.Option("--roles", help="the role files, for banned words, constraints and persona markers "
                         "(default: the bundled examples)"),
        ] = None,
        tolerance: Annotated[
            float | None,
            typer.Option("--tolerance", help="share of pairs (0-1) a field may differ in beyond the noise "
                         "(default: the SLO spec's gate.diff_tolerance, 0.05)"),
        ] = None,
        slo: Annotated[Path | None, typer.Option("--slo", help="SLO spec (default: the bundled one)")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    ) -> None:
        """Compare primary and candidate replies field by field: status, length in tokens, confidence,
        banned words, constraints, persona openers / closers / catchphrases, latency.

        With --noise (the primary answering twice), only differences beyond the primary-against-primary
        noise are reported. Exit codes: 0 within tolerance, 1 a difference beyond the noise exceeds it,
        2 usage error.

        Examples:

          rolescope diff mirror-pairs.jsonl --noise primary-pairs.jsonl --roles roles/

          rolescope diff mirror-pairs.jsonl --tolerance 0.02 --json
        """
        from rich.console import Console

        from rolescope.alerts.spec import load_slo_spec
        from rolescope.diff.compare import compare_pairs
        from rolescope.diff.role_markers import markers_from
        from rolescope.errors import ConfigError, GateFailed
        from rolescope.mirroring.pairs import read_pairs

        if tolerance is not None and not 0 <= tolerance < 1:
            raise ConfigError(f"--tolerance {tolerance}: expected a share of pairs within [0, 1)")
        limit = tolerance if tolerance is not None else load_slo_spec(slo).gate.diff_tolerance
        markers_of = markers_from(roles)
        found = read_pairs(pairs)
        if not found:
            raise ConfigError(f"{pairs}: no pairs to compare")
        report = compare_pairs(
            found, markers_of, noise=read_pairs(noise) if noise else (), tolerance=limit
        )
        if as_json:
            typer.echo(json.dumps(report.as_dict(), indent=2))
        else:
            _print(Console(), report)
        if not report.passed:
            failing = ", ".join(f.field for f in report.fields if f.exceeds)
            raise GateFailed(f"beyond the noise, {failing} differ(s) in more than {limit:.0%} of pairs")
