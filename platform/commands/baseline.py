"""`rolescope baseline`: record allocations and bytes per request, and hold a candidate to them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def _kinds_table(title: str, kinds: dict[str, Any]) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title))
    for column in ("kind", "requests", "allocs/request", "bytes/request", "peak MiB", "retained/session",
                   "spread allocs %"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind, fig in kinds.items():
        table.add_row(escape(kind), str(fig.requests), f"{fig.allocations_per_request:,.1f}",
                      f"{fig.bytes_per_request:,.0f}", f"{fig.peak_bytes / 2**20:.2f}",
                      f"{fig.retained_bytes_per_session:,.0f} B", f"{fig.allocations_spread_pct:.3f}")
    return table


def register(app: typer.Typer) -> None:
    baseline_app = typer.Typer(
        no_args_is_help=True, help="Memory baselines: allocations and bytes per request."
    )

    @baseline_app.command("record")
    def record(
        traffic: Path | None = typer.Option(
            None, "--traffic", "-t", help="Shadow traffic JSONL (default: the bundled sample).",
            show_default=False,
        ),
        out: Path = typer.Option(
            Path("loadtests/baselines/bundled.json"), "--out", "-o", help="Baseline file."
        ),
        repeats: int = typer.Option(3, "--repeats", min=1, max=20, help="Measured passes; medians are kept."),
        warmup: int = typer.Option(30, "--warmup", min=0, help="Requests replayed before measuring."),
        limit: int = typer.Option(
            120, "--limit", min=0, help="Replay the first N requests only (0: all); 120 as the committed one."
        ),
        fault: list[str] = typer.Option(
            [], "--fault", help="Plant a simulator fault, KEY=VALUE (e.g. extra_allocations=2000).",
        ),
    ) -> None:
        """Replay traffic in-process through the real app under memray and write a baseline.

        Every layer runs (routes, chat service, simulator, SQLite); memray counts
        every allocation, so the totals divided by requests are allocations and
        bytes per request, per kind (chat, stream, all), plus peak memory and
        memory retained per session. The medians of --repeats passes are kept
        with their spread, together with the Python and package versions, role
        versions and a digest of the traffic.

        Examples:

          rolescope baseline record --out loadtests/baselines/bundled.json

          rolescope baseline record --traffic captured.jsonl --limit 0 --out runs/memory.json

          rolescope baseline record --fault extra_allocations=2000 --out runs/candidate.json
        """
        from rich.console import Console

        from rolescope.commands.serve import parse_faults
        from rolescope.memory.baseline import record_baseline
        from rolescope.settings import FaultSettings, Settings

        console = Console()
        settings = Settings(faults=FaultSettings(**parse_faults(fault)))  # type: ignore[arg-type]
        with console.status("replaying traffic under memray…") as status:
            baseline = record_baseline(
                traffic, repeats, warmup, limit=limit or None, settings=settings,
                progress=lambda line: status.update(f"replaying traffic under memray… {line}"),
            )
        baseline.dump(out)
        env = baseline.environment
        title = f"{env.traffic} ({env.traffic_subset}), Python {env.python}"
        console.print(_kinds_table(title, baseline.kinds))
        console.print(f"written: {out}", markup=False)

    @baseline_app.command("compare")
    def compare(
        baseline: Path = typer.Argument(..., help="The committed baseline JSON.", show_default=False),
        candidate: Path = typer.Argument(
            ..., help="The candidate's figures (same format).", show_default=False
        ),
        slo: Path | None = typer.Option(
            None, "--slo", help="SLO spec whose gate.memory holds the tolerances (default: bundled).",
            show_default=False,
        ),
        json_out: Path | None = typer.Option(None, "--json", help="Also write the comparison as JSON."),
    ) -> None:
        """Hold a candidate to a baseline: allocations/request +5 %, bytes/request +4 % by default.

        Tolerances come from the SLO spec's `gate.memory`. A candidate recorded on
        another Python, other package versions or other traffic is refused (exit
        2), not compared. The allocation sites that grew most are named.

        Exit codes: 0 within tolerance, 1 over it, 2 not comparable or bad input.

        Examples:

          rolescope baseline compare loadtests/baselines/bundled.json runs/memory.json

          rolescope baseline compare base.json live.json --slo alerts/slo.yaml --json runs/memory-diff.json
        """
        import json

        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        from rolescope.errors import GateFailed
        from rolescope.memory.compare import compare_memory, tolerances_from_spec
        from rolescope.memory.model import load_baseline

        result = compare_memory(load_baseline(baseline), load_baseline(candidate), tolerances_from_spec(slo))
        table = Table(title=escape(f"{candidate} against {baseline}"))
        for column in ("kind", "figure", "baseline", "candidate", "change", "allowed", ""):
            table.add_column(column, justify="left" if column in ("kind", "figure") else "right")
        for check in result.checks:
            verdict = "[green]ok[/]" if check.passed else "[bold red]FAIL[/]"
            table.add_row(escape(check.kind), escape(check.figure), f"{check.baseline:,.1f}",
                          f"{check.candidate:,.1f}", f"{100 * check.change:+.2f} %",
                          f"+{100 * check.tolerance:.0f} %", verdict)
        console = Console()
        console.print(table)
        if result.grown_sites:
            sites = Table(title="allocation sites that grew (allocations per request)")
            for column in ("site", "baseline", "candidate", "change"):
                sites.add_column(column, justify="left" if column == "site" else "right")
            for site in result.grown_sites[:8]:
                sites.add_row(escape(site.site), f"{site.baseline_allocations_per_request:,.1f}",
                              f"{site.candidate_allocations_per_request:,.1f}",
                              f"{site.allocations_delta:+,.1f}")
            console.print(sites)
        for note in result.notes:
            console.print(f"[yellow]note:[/] {escape(note)}")
        if json_out is not None:
            json_out.write_text(json.dumps(result.to_dict(), indent=2, default=str), encoding="utf-8")
        if not result.passed:
            worst = max(result.failures, key=lambda c: c.change - c.tolerance)
            raise GateFailed(
                f"{worst.kind} {worst.figure.replace('_', ' ')} grew {100 * worst.change:+.2f} % "
                f"(allowed +{100 * worst.tolerance:.0f} %)"
            )

    app.add_typer(baseline_app, name="baseline")
