"""`rolescope profile`: py-spy profiles of the role service, and what changed between two sets of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup


class _RecordOrCompare(TyperGroup):
    """`profile -- COMMAND…` records; only the word `compare` selects the subcommand.

    A plain group would read the command's first word (`python`, `uvicorn`) as a
    subcommand name and fail.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        super().parse_args(ctx, args)
        protected = list(getattr(ctx, "_protected_args", []))
        if protected and protected[0] not in self.commands:
            ctx.args = [*protected, *ctx.args]
            ctx._protected_args = []
        return list(ctx.args)


def _print_functions(rows: list[Any], limit: int) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="functions by self share of samples")
    for column in ("function", "self %", "total %", "self samples"):
        table.add_column(column, justify="left" if column == "function" else "right")
    for row in rows[:limit]:
        table.add_row(escape(row.function), f"{100 * row.self_share:.1f}", f"{100 * row.total_share:.1f}",
                      str(row.self_samples))
    Console().print(table)


def _print_layers(rows: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from rolescope.profiling.layers import short_function

    table = Table(title="samples by layer (self time of each sample's leaf frame)")
    for column in ("layer", "share %", "top functions within the layer"):
        table.add_column(column, justify="right" if column == "share %" else "left")
    for row in rows:
        tops = ", ".join(f"{short_function(f)} {100 * s:.1f} %" for f, s in row.top_functions)
        table.add_row(row.layer, f"{100 * row.share:.1f}", tops)
    Console().print(table)


def _print_layer_changes(changes: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from rolescope.profiling.layers import short_function

    table = Table(title="layers: share of all samples, baseline vs candidate")
    for column in ("layer", "baseline %", "candidate %", "change", "q", "", "most changed within"):
        table.add_column(column, justify="left" if column in ("layer", "most changed within") else "right")
    for change in changes:
        q = "—" if change.q_value is None else f"{change.q_value:.3g}"
        colour = "red" if change.direction == "grew" else "blue"
        mark = f"[{colour}]{change.direction}[/]" if change.significant else ""
        within = ""
        if change.function:
            within = f"{short_function(change.function)} {100 * change.function_delta:+.1f}"
        table.add_row(
            change.layer,
            f"{100 * change.baseline_share:.1f}",
            f"{100 * change.candidate_share:.1f}",
            f"{100 * change.delta:+.1f}",
            q,
            mark,
            within,
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    profile_app = typer.Typer(cls=_RecordOrCompare, invoke_without_command=True, no_args_is_help=True)

    @profile_app.callback(context_settings={"allow_extra_args": True})
    def profile(
        ctx: typer.Context,
        pid: int | None = typer.Option(
            None, "--pid", "-p", help="Profile this running process.", show_default=False
        ),
        duration: int = typer.Option(30, "--duration", "-d", min=1, help="Seconds to sample."),
        rate: int = typer.Option(100, "--rate", "-r", min=1, max=1000, help="Samples per second."),
        out: Path = typer.Option(Path("profile"), "--out", "-o", help="Directory for every artifact."),
        segments: int = typer.Option(
            1, "--segments", min=1, help="Record in N consecutive segments (observations for `compare`)."
        ),
        worker: bool = typer.Option(
            True, "--worker/--no-worker",
            help="With --pid, attach to the busiest python process under it (the uvicorn worker).",
        ),
        subprocesses: bool = typer.Option(False, "--subprocesses", "-s", help="Follow every child process."),
        nonblocking: bool = typer.Option(
            False, "--nonblocking", help="Do not pause the target while sampling (cheaper, rare torn stacks)."
        ),
        top: int = typer.Option(15, "--top", help="Rows of the function table to print."),
    ) -> None:
        """Record a py-spy profile: folded stacks, speedscope, flame graph SVG, layer and function tables.

        The samples are printed by layer first (framework/server, event loop,
        business, inference, storage, telemetry, capture, waiting threads,
        other; each sample's self time goes to its leaf frame's module), then
        by function.

        Give a running process with --pid, or a command to start after `--`.
        py-spy needs ptrace: run as root, or in a container add SYS_PTRACE.

        Examples:

          rolescope profile --pid 4242 --duration 30 --rate 100 --out runs/p1

          rolescope profile --pid 4242 --duration 30 --segments 10 --nonblocking --out runs/p1

          rolescope profile --duration 20 --out runs/p2 -- rolescope serve --port 8080

          rolescope profile compare runs/base --candidate runs/p1 --out runs/diff
        """
        if ctx.invoked_subcommand is not None:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        from rolescope.errors import ConfigError
        from rolescope.profiling.collapsed import function_table, read_collapsed
        from rolescope.profiling.layers import layer_table
        from rolescope.profiling.recorder import COLLAPSED, record

        command = list(ctx.args)
        if (pid is None) == (not command):
            raise ConfigError("profile needs exactly one target: --pid PID, or -- COMMAND… (not both)")
        target: int | list[str] = pid if pid is not None else command
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn()) as progress:
            task = progress.add_task(f"py-spy at {rate} Hz for {duration} s", total=segments)
            run = record(
                target, duration, rate, out, subprocesses=subprocesses, nonblocking=nonblocking,
                segments=segments if pid is not None else 1, find_worker=worker,
                on_segment=lambda done, _total: progress.update(task, completed=done),
            )
        recorded = read_collapsed(out / COLLAPSED)
        _print_layers(layer_table(recorded))
        _print_functions(function_table(recorded), top)
        console = Console()
        console.print(f"{run.samples} samples of {run.target}; written to {out}/:", markup=False)
        for label, name in run.files.items():
            console.print(f"  {label:<11} {out / name}", markup=False)

    @profile_app.command("compare")
    def compare(
        baseline: list[Path] = typer.Argument(
            ..., help="Baseline profile directories or folded-stack files.", show_default=False
        ),
        candidate: list[Path] = typer.Option(
            ..., "--candidate", "-c", help="Candidate profile directory or file (repeatable).",
            show_default=False,
        ),
        out: Path = typer.Option(Path("profile-diff"), "--out", "-o", help="Where diff.json and the SVG go."),
        metric: str = typer.Option("self", "--metric", help="Rank by `self` or `total` share."),
        min_share: float = typer.Option(
            0.01, "--min-share", help="Ignore functions below this share on both sides."
        ),
        alpha: float = typer.Option(0.05, "--alpha", help="False discovery rate (Benjamini-Hochberg)."),
        top: int = typer.Option(15, "--top", help="Rows to print."),
        fail_on_growth: bool = typer.Option(
            False, "--fail-on-growth", help="Exit 1 when any function's share grew significantly."
        ),
    ) -> None:
        """Rank the layers, then the functions, whose share of samples changed; draw a diff flame graph.

        Every folded-stack file, and every segment of a profile directory, is one
        observation. Per function a two-sided Mann-Whitney U test compares the
        shares and Benjamini-Hochberg controls the false discovery rate; at least
        two observations a side are needed for a test (record with --segments).
        The SVG is sized by the candidate: red grew, blue shrank.

        Examples:

          rolescope profile compare runs/base --candidate runs/new --out runs/diff

          rolescope profile compare a1 a2 a3 --candidate b1 -c b2 -c b3 --metric total
        """
        import json

        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        from rolescope.errors import ConfigError, GateFailed
        from rolescope.profiling.collapsed import merge
        from rolescope.profiling.compare import compare_profiles
        from rolescope.profiling.flamegraph import render_diff_svg
        from rolescope.profiling.recorder import load_runs
        from rolescope.rundir import DIFF_FLAMEGRAPH_FILE, PROFILE_DIFF_FILE

        if metric not in ("self", "total"):
            raise ConfigError(f"--metric is {metric!r}, expected `self` or `total`")
        base_runs = [p for path in baseline for p in load_runs(path)]
        cand_runs = [p for path in candidate for p in load_runs(path)]
        try:
            diff = compare_profiles(base_runs, cand_runs, metric=metric,  # type: ignore[arg-type]
                                    min_share=min_share, alpha=alpha)
        except ValueError as exc:
            raise ConfigError(f"profile compare: {exc}") from exc
        out.mkdir(parents=True, exist_ok=True)
        (out / PROFILE_DIFF_FILE).write_text(json.dumps(diff.to_dict(), indent=2), encoding="utf-8")
        svg = render_diff_svg(merge(base_runs), merge(cand_runs),
                              title=f"{metric} share: red grew, blue shrank")
        (out / DIFF_FLAMEGRAPH_FILE).write_text(svg, encoding="utf-8")
        _print_layer_changes(diff.layers)
        table = Table(title=f"{metric} share, {diff.baseline_runs} vs {diff.candidate_runs} observations")
        for column in ("function", "baseline %", "candidate %", "change", "q", ""):
            table.add_column(column, justify="left" if column == "function" else "right")
        for change in diff.changes[:top]:
            was = change.baseline_self_share if metric == "self" else change.baseline_total_share
            now = change.candidate_self_share if metric == "self" else change.candidate_total_share
            q = "—" if change.q_value is None else f"{change.q_value:.3g}"
            colour = "red" if change.direction == "grew" else "blue"
            mark = f"[{colour}]{change.direction}[/]"
            table.add_row(escape(change.function), f"{100 * was:.1f}", f"{100 * now:.1f}",
                          f"{100 * change.delta:+.1f}", q, mark if change.significant else "")
        console = Console()
        console.print(table)
        if diff.note:
            console.print(f"[yellow]note:[/] {escape(diff.note)}")
        console.print(f"written: {out / PROFILE_DIFF_FILE}, {out / DIFF_FLAMEGRAPH_FILE}", markup=False)
        if fail_on_growth and diff.grew:
            first = diff.grew[0]
            layer = f"the {diff.grown_layers[0].layer} layer grew; " if diff.grown_layers else ""
            raise GateFailed(
                f"{layer}{first.function} grew from {100 * first.baseline_self_share:.1f} % "
                f"to {100 * first.candidate_self_share:.1f} % of samples"
            )

    app.add_typer(profile_app, name="profile", help="py-spy profiles: record (--pid or -- COMMAND), compare.")
