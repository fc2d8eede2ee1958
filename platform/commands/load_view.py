"""Rich output of `rolescope load`: a progress bar while Locust runs, then the SLI table."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from rolescope.errors import ConfigError
from rolescope.loadtests.load_config import UserKind
from rolescope.loadtests.runner import LoadOptions, run_load
from rolescope.loadtests.targets.base import TargetOptions
from rolescope.rundir import SLIS_FILE

console = Console()


def check_target_or_exit(
    host: str,
    target: TargetOptions,
    traffic: Path | None = None,
    user: UserKind = "replay",
    timeout_s: float = 30,
    roles_selectable: bool = True,
    roles_option: str = "--roles",
) -> None:
    """Probe the target once; list every finding; stop (exit 2) before any load if one is an error."""
    from rolescope.loadtests.targets.preflight import judge_preflight
    from rolescope.loadtests.targets.probe import check_target

    with console.status(f"checking {host}"):
        plan, probe = check_target(host, target, traffic, user, timeout_s, roles_selectable, roles_option)
    findings = judge_preflight(plan, probe)
    errors = [f for f in findings if f.severity == "error"]
    for finding in findings:
        mark = "[bold red]✗[/]" if finding.severity == "error" else "[yellow]![/]"
        console.print(f"{mark} {finding.text}", highlight=False)
    if errors:
        raise ConfigError(
            f"the target check found {len(errors)} problem{'s' if len(errors) > 1 else ''} "
            f"with {host} ({target.api}); nothing was sent"
        )


def run_with_progress(options: LoadOptions) -> Path:
    with Progress(
        TextColumn("[bold]load[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.fields[requests]} requests"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(escape(options.host), total=options.duration_s, requests=0)

        def update(elapsed: float, requests: int) -> None:
            bar.update(task, completed=min(elapsed, options.duration_s), requests=requests)

        return run_load(options, progress=update)


def _ms(value: float) -> str:
    return f"{value * 1000:.1f}"


_LABELS = {"ttft": "TTFT", "tpot": "TPOT", "itl": "ITL", "e2e": "end-to-end"}


def goodput_rule(thresholds: dict[str, float]) -> str:
    """What a request had to meet to count as good, in words (see `rolescope.gate.goodput`)."""
    streams = [f"{_LABELS[k]} ≤ {v:g} s" for k, v in thresholds.items() if k != "e2e"]
    every = [f"end-to-end ≤ {thresholds['e2e']:g} s"] if "e2e" in thresholds else []
    parts = ([f"streams: {', '.join(streams)}"] if streams else []) + [
        f"every reply: {', '.join(['ok', *every])}"
    ]
    return "; ".join(parts)


def print_slis(run_dir: Path) -> None:
    slis = json.loads((run_dir / SLIS_FILE).read_text())
    table = Table(title=escape(f"client-side SLIs — {run_dir}"), title_justify="left")
    table.add_column("ms")
    for column in ("p50", "p90", "p95", "p99", "max", "count"):
        table.add_column(column, justify="right")
    for key, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("itl_s", "ITL"), ("e2e_s", "end-to-end")):
        dist = slis[key]
        table.add_row(label, *(_ms(dist[p]) for p in ("p50", "p90", "p95", "p99", "max")), str(dist["count"]))
    console.print(table)
    console.print(
        f"requests {slis['requests']}  failures {slis['failures']}  error ratio {slis['error_ratio']:.2%}  "
        f"throughput {slis['throughput_rps']:.1f} req/s  {slis['output_tokens_per_s']:.0f} tokens/s  "
        f"goodput {slis['goodput']:.1%} ({goodput_rule(slis['thresholds_s'])})"
    )
    if slis.get("input_tokens_mean") is not None:
        console.print(f"input tokens per request (mean, as reported) {slis['input_tokens_mean']:.1f}")
    if slis.get("streams_all_at_once"):
        console.print(
            f"[yellow]warning:[/] {slis['streams_all_at_once']} streams arrived all at once "
            "(a buffering proxy or compression?)"
        )
