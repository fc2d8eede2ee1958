"""`rolescope tune`: the whole loop — service, shadow traffic, profile, memory, verdict, report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from rolescope.commands.target_flags import with_target_options

if TYPE_CHECKING:
    from rolescope.commands.load_target import TargetArgs

_PRESETS = "--quick: 3 runs of 12 s; default: 5 runs of 30 s"


def _pairs(values: list[str], option: str) -> dict[str, str]:
    from rolescope.errors import ConfigError

    pairs: dict[str, str] = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} {value!r}: expected KEY=VALUE")
        pairs[key.strip().replace("-", "_")] = raw.strip()
    return pairs


def _faults(values: list[str]) -> dict[str, float]:
    from rolescope.errors import ConfigError
    from rolescope.settings import FAULT_KEYS

    faults: dict[str, float] = {}
    for key, raw in _pairs(values, "--fault").items():
        if key not in FAULT_KEYS:
            raise ConfigError(f"--fault {key}: unknown fault knob; choose from {', '.join(FAULT_KEYS)}")
        try:
            faults[key] = float(raw)
        except ValueError as exc:
            raise ConfigError(f"--fault {key}={raw}: the value must be a number") from exc
    return faults


def register(app: typer.Typer) -> None:
    @app.command("tune")
    @with_target_options(roles_flag="--target-roles")
    def tune(
        quick: bool = typer.Option(False, "--quick", help=f"A short loop for a first look ({_PRESETS})."),
        runs: int | None = typer.Option(None, "--runs", help="Load runs per trial.", show_default=False),
        duration: float | None = typer.Option(
            None, "--duration", help="Seconds per load run.", show_default=False
        ),
        speed: float = typer.Option(
            10.0, "--speed", help="Replay the shadow traffic this many times faster."
        ),
        users: int = typer.Option(40, "--users", help="Concurrent Locust users replaying sessions."),
        fault: list[str] = typer.Option(
            [],
            "--fault",
            help="Plant a regression: cpu_per_token_us=…, extra_allocations=…, "
            "added_latency_ms=…, error_rate=… (repeatable).",
        ),
        setting: list[str] = typer.Option(
            [], "--set", help="A service setting for this run, e.g. workers=2 (repeatable)."
        ),
        sweep: list[str] = typer.Option(
            [],
            "--sweep",
            help="Try every combination: workers=1,2 concurrency_limit=32,256 memory_window=5,20.",
        ),
        target: str | None = typer.Option(
            None,
            "--target",
            help="Tune an already running service at this URL (any --api) instead of launching one.",
        ),
        pid: int | None = typer.Option(
            None,
            "--pid",
            help="With --target: the service's pid (a local Python process), to profile it and read "
            "its CPU and memory.",
        ),
        traffic: Path | None = typer.Option(
            None, "--traffic", help="Shadow traffic JSONL (default: the bundled sample).", show_default=False
        ),
        reference: list[Path] = typer.Option(
            [], "--reference", "-r", help="Earlier run directories to compare with A/B (repeatable)."
        ),
        slo: Path | None = typer.Option(
            None, "--slo", help="SLO spec (default: bundled).", show_default=False
        ),
        baseline: Path | None = typer.Option(
            None, "--baseline", help="Memory baseline (default: committed bundled.json).", show_default=False
        ),
        out: Path | None = typer.Option(
            None, "--out", "-o", help="Run directory (default: runs/<timestamp>).", show_default=False
        ),
        roles: Path | None = typer.Option(
            None,
            "--roles",
            help="Role file or folder to serve (default: the bundled roles).",
            show_default=False,
        ),
        split_by_version: str | None = typer.Option(
            None,
            "--split-by-version",
            help="One-run A/B: judge this role version's requests against another version's (the split "
            "of the served roles' release policy); see `rolescope gate --help`.",
            show_default=False,
        ),
        primary_version: str | None = typer.Option(
            None, "--primary-version", help="With --split-by-version: the version to compare with.",
            show_default=False,
        ),
        no_profile: bool = typer.Option(False, "--no-profile", help="Skip py-spy."),
        no_memory: bool = typer.Option(False, "--no-memory", help="Skip the memray measurement."),
        *,
        target_args: TargetArgs,
    ) -> None:
        """Run the tuning loop and judge it: exit 0 pass, 1 the gate failed, 2 usage or environment error.

        Launches the role service (simulator, SQLite, a fresh temporary database),
        warms it up, replays the bundled shadow traffic with Locust for N runs
        while py-spy profiles the service, measures allocations and bytes per
        request with memray, and judges everything against the SLO spec and the
        committed baseline. Writes load-1/ … load-N/, profile/, memory.json,
        verdict.json, junit.xml, summary.md and report.html.

        Examples:

          rolescope tune --quick

          rolescope tune --fault added_latency_ms=50 --reference runs/20260101-120000

          rolescope tune --target http://127.0.0.1:8080 --pid 4242 --runs 3

          rolescope tune --quick --target http://127.0.0.1:8000 --api openai --model my-model \\
              --roles-dir examples --max-tokens 128

          rolescope tune --quick --sweep workers=1,2 --sweep memory_window=5,20
        """
        from rich.console import Console
        from rich.markup import escape

        from rolescope.commands.load_target import target_options
        from rolescope.errors import ConfigError, GateFailed
        from rolescope.gate.console import print_verdict
        from rolescope.gate.judge import headline
        from rolescope.gate.version_split import VersionChoice
        from rolescope.tune.loop import TuneOptions
        from rolescope.tune.loop import tune as run_tune

        if primary_version is not None and split_by_version is None:
            raise ConfigError("--primary-version needs --split-by-version")
        _check_target_flags(target, pid, target_args, fault, setting, sweep, roles)
        timeout_s = target_args.timeout_s()
        protocol = target_options(target_args)
        console = Console()
        if target is not None:
            from rolescope.commands.load_view import check_target_or_exit

            # Before any load: the running service answers, accepts the key, serves every role replayed.
            check_target_or_exit(
                target.rstrip("/"),
                protocol,
                traffic,
                "replay",
                min(timeout_s, 30.0),
                roles_option="--target-roles",
            )
        options = TuneOptions(
            out=out,
            quick=quick,
            runs=runs,
            duration_s=duration,
            speed=speed,
            users=users,
            faults=_faults(fault),
            settings=_settings(setting),
            target=target.rstrip("/") if target is not None else None,
            pid=pid,
            reference=list(reference),
            slo=slo,
            baseline=baseline,
            profile=not no_profile,
            memory=not no_memory,
            roles=roles,
            traffic=traffic,
            target_options=protocol,
            timeout_s=timeout_s,
            versions=VersionChoice(split_by_version, primary_version) if split_by_version else None,
        )
        if sweep:
            from rolescope.tune.sweep_runner import print_sweep, run_sweep

            with console.status("sweeping") as spinner:
                result = run_sweep(options, sweep, _Progress(console, spinner))
            print_sweep(console, result)
            if result.best is None:
                raise GateFailed("no trial met every SLO; see the table above")
            return
        with console.status("starting") as spinner:
            outcome = run_tune(options, _Progress(console, spinner))
        print_verdict(console, outcome.verdict)
        report = outcome.files["report"].resolve()
        console.print(f"run directory: {outcome.out}", markup=False)
        console.print(f"report: [link=file://{report}]{escape(str(report))}[/link]")
        if not outcome.verdict.passed:
            raise GateFailed(headline(outcome.verdict))


def _check_target_flags(
    target: str | None,
    pid: int | None,
    args: TargetArgs,
    faults: list[str],
    settings: list[str],
    sweep: list[str],
    serve_roles: Path | None,
) -> None:
    """Options that only fit a launched service, or only a running target, named all at once."""
    from rolescope.errors import ConfigError
    from rolescope.loadtests.targets.base import TargetOptions

    problems: list[str] = []
    if target is None:
        if pid is not None:
            problems.append("--pid only makes sense with --target (a launched service is profiled anyway)")
        defaults = TargetOptions()
        if args.api != defaults.api or args.template or args.model or args.headers or args.api_key_env:
            problems.append("--api, --template, --model, --header and --api-key-env need --target URL")
        if args.max_tokens or args.ignore_eos or args.history_turns is not None or args.roles_path:
            problems.append("--max-tokens, --ignore-eos, --history-turns and --roles-dir need --target URL")
        if args.roles or args.insecure or args.ca_file or args.client_cert or args.client_key:
            problems.append(
                "--target-roles, --insecure, --ca, --client-cert and --client-key need --target URL"
            )
    else:
        if not target.startswith(("http://", "https://")):
            problems.append(f"--target {target!r} must be a URL such as http://127.0.0.1:8080")
        if serve_roles is not None:
            problems.append(
                "--roles names the role files tune's own service serves; for a --target use --roles-dir "
                "(personas sent as the system message) or --target-roles (keep or map roles)"
            )
        if faults or settings or sweep:
            problems.append(
                "--fault, --set and --sweep configure the service tune launches; a running --target "
                "keeps its own settings"
            )
        if pid is not None:
            import psutil

            if not psutil.pid_exists(pid):
                problems.append(f"--pid {pid}: no such process")
    if problems:
        raise ConfigError("\n  ".join(["the tune options are invalid:", *problems]))


def _settings(values: list[str]) -> dict[str, object]:
    from rolescope.errors import ConfigError
    from rolescope.tune.sweep import SWEEPABLE

    settings: dict[str, object] = {}
    for key, raw in _pairs(values, "--set").items():
        if key not in SWEEPABLE:
            raise ConfigError(f"--set {key}: not a tunable setting; choose from {', '.join(SWEEPABLE)}")
        try:
            settings[key] = SWEEPABLE[key](raw)
        except ValueError as exc:
            raise ConfigError(f"--set {key}={raw}: expected a whole number") from exc
    return settings


class _Progress:
    """Updates the spinner; a new phase (not a tick of the same one) is also printed once, as a log."""

    def __init__(self, console: Any, spinner: Any) -> None:
        self._console = console
        self._spinner = spinner
        self._phase = ""

    def __call__(self, message: str) -> None:
        from rich.markup import escape

        phase = message.split(": ", 1)[0]
        if phase != self._phase:
            self._console.print(f"[dim]•[/] {escape(phase)}", highlight=False)
            self._phase = phase
        self._spinner.update(escape(message))
