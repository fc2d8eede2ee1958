"""`rolescope tune --sweep`: one trial per combination of settings, then the cheapest that meets every SLO."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rolescope.gate.goodput import good_requests
from rolescope.gate.policy import load_policy
from rolescope.rundir import SWEEP_FILE, trial_dir_name
from rolescope.tune.loop import TuneOptions, TuneOutcome, judge_directory, plan_for
from rolescope.tune.sweep import TrialResult, best_trial, expand_grid, parse_sweep, settings_label
from rolescope.tune.trial import Status, run_trial


@dataclass
class SweepResult:
    out: Path
    trials: list[TrialResult]
    best: TrialResult | None


def trial_result(settings: dict[str, object], outcome: TuneOutcome) -> TrialResult:
    """Costs of one trial from its load runs: goodput per CPU core used, peak memory per session."""
    runs = outcome.collected.candidate
    latency = outcome.policy.latency_objectives
    # Rates over the span of the requests: the service idles while Locust starts and stops.
    wall = sum(r.duration_s for r in runs)
    good = sum(good_requests(r.samples, latency) for r in runs)
    cpu = sum(float(r.service.get("cpu_seconds", 0.0)) for r in runs)
    # Memory per session: the peak held while serving the run with the most sessions.
    sessions = max((len({s.session for s in r.samples}) for r in runs), default=1) or 1
    peak = max((int(r.service.get("peak_rss_bytes", 0)) for r in runs), default=0)
    return TrialResult(
        settings=dict(settings),
        passed=outcome.verdict.passed,
        failed_checks=[c.name for c in outcome.verdict.failed],
        goodput_rps=good / wall if wall else 0.0,
        cpu_cores=cpu / wall if wall else 0.0,
        memory_per_session_bytes=peak / sessions,
        directory=str(outcome.out),
    )


def _prefixed(status: Status, prefix: str) -> Status:
    return lambda message: status(f"{prefix}: {message}")


def run_sweep(options: TuneOptions, sweep: list[str], status: Status) -> SweepResult:
    policy = load_policy(options.slo)
    combos = expand_grid(parse_sweep(sweep))
    root = options.output_dir()
    trials: list[TrialResult] = []
    for index, combo in enumerate(combos, start=1):
        trial_dir = root / trial_dir_name(index)
        trial_options = dataclasses.replace(options, settings={**options.settings, **combo}, out=trial_dir)
        label = settings_label(combo)
        prefix = f"trial {index}/{len(combos)} ({label})"
        run_trial(plan_for(trial_options, trial_dir), _prefixed(status, prefix))
        outcome = judge_directory(trial_dir, policy, options.reference, options.baseline, f"trial {label}")
        trials.append(trial_result(combo, outcome))
    best = best_trial(trials)
    document = {
        "trials": [{**dataclasses.asdict(t), "goodput_per_cpu": t.goodput_per_cpu} for t in trials],
        "best": None if best is None else best.settings,
        "ranking": "passing trials by goodput per CPU core (within 5 % is a tie), then memory per session",
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / SWEEP_FILE).write_text(json.dumps(document, indent=2, default=str) + "\n")
    return SweepResult(root, trials, best)


def print_sweep(console: Console, result: SweepResult) -> None:
    table = Table(title=f"sweep — {len(result.trials)} trials", title_justify="left")
    for column in ("", "settings", "SLOs", "goodput req/s", "CPU cores", "goodput / CPU", "memory / session"):
        table.add_column(column)
    for trial in result.trials:
        chosen = trial is result.best
        table.add_row(
            "[bold green]★[/]" if chosen else "",
            escape(settings_label(trial.settings)),
            "[green]met[/]" if trial.passed else f"[red]{escape(', '.join(trial.failed_checks))}[/]",
            f"{trial.goodput_rps:.2f}",
            f"{trial.cpu_cores:.2f}",
            f"{trial.goodput_per_cpu:.1f}",
            f"{trial.memory_per_session_bytes / 1024:.0f} KiB",
            style="bold" if chosen else None,
        )
    console.print(table)
    if result.best is not None:
        console.print(
            f"[bold green]best: {escape(settings_label(result.best.settings))}[/] — meets every SLO with "
            f"the most goodput per CPU; details in {escape(str(result.out / SWEEP_FILE))}",
            highlight=False,
        )
    else:
        console.print("[bold red]no trial met every SLO[/]")
