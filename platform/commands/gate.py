"""`rolescope gate`: judge existing run directories against the SLO spec, a reference and the baseline."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("gate")
    def gate(
        candidate: list[Path] = typer.Argument(
            None,
            help="Candidate load run directories, or a tune directory holding load-*/ "
            "(optional with --capacity).",
            show_default=False,
        ),
        reference: list[Path] = typer.Option(
            [], "--reference", "-r", help="Reference run directories for the A/B checks (repeatable)."
        ),
        slo: Path | None = typer.Option(
            None, "--slo", help="SLO spec (default: the bundled alerts/slo.yaml).", show_default=False
        ),
        baseline: Path | None = typer.Option(
            None,
            "--baseline",
            help="Memory baseline JSON (default: the committed loadtests/baselines/bundled.json).",
            show_default=False,
        ),
        capacity: Path | None = typer.Option(
            None,
            "--capacity",
            help="Candidate `rolescope capacity` directory: compare its capacity with --capacity-reference.",
            show_default=False,
        ),
        capacity_reference: Path | None = typer.Option(
            None,
            "--capacity-reference",
            help="Reference `rolescope capacity` directory (with --capacity).",
            show_default=False,
        ),
        out: Path | None = typer.Option(
            None,
            "--out",
            "-o",
            help="Where verdict.json, junit.xml, summary.md and report.html go (default: the first candidate).",  # noqa: E501
            show_default=False,
        ),
        split_by_version: str | None = typer.Option(
            None,
            "--split-by-version",
            help="One-run A/B: judge this role version's requests against another version's from the "
            "same runs (the split of a release policy).",
            show_default=False,
        ),
        primary_version: str | None = typer.Option(
            None,
            "--primary-version",
            help="With --split-by-version: the version to compare with (default: the other version "
            "that answered most).",
            show_default=False,
        ),
        slices: int = typer.Option(
            8, "--slices", min=2, help="With --split-by-version: time slices a side, the A/B's repetitions."
        ),
    ) -> None:
        """Judge run directories: SLOs, A/B against a reference, memory against the baseline.

        Absolute checks come from the SLO spec (error ratio, latency objectives
        computed from every request, goodput). With --reference, each figure is
        compared run by run: it fails only when the change is significant
        (one-sided Mann-Whitney U, Holm-corrected, α from the spec) AND beyond
        its tolerance — use at least 5 runs a side. Memory per request is held
        to the committed baseline. With --capacity and --capacity-reference, the
        capacity found by `rolescope capacity` fails when the candidate's bracket
        lies wholly below the reference's by more than the spec's
        gate.capacity_drop_pct (10 % by default).

        Exit codes: 0 pass, 1 the gate failed, 2 usage or environment error.

        Examples:

          rolescope gate runs/20260101-120000

          rolescope gate pr/load-* --reference main/load-* --out gate-result

          rolescope gate runs/candidate --slo alerts/slo.yaml --baseline loadtests/baselines/bundled.json

          rolescope gate runs/canary --split-by-version 1.3

          rolescope gate --capacity pr-capacity --capacity-reference main-capacity

        With --split-by-version, the runs' requests answered by that version are
        the candidate and those of the primary version the reference: one run
        whose sessions a release policy split between two versions is a fair A/B
        (same machine, same minutes). Each run is cut into time slices, each
        slice of each version being one repetition of its side.
        """
        from rich.console import Console
        from rich.markup import escape

        from rolescope.errors import ConfigError, GateFailed
        from rolescope.gate.collect import collect, collect_capacity
        from rolescope.gate.console import print_verdict
        from rolescope.gate.judge import headline
        from rolescope.gate.outputs import judge_versions, write_all
        from rolescope.gate.policy import load_policy
        from rolescope.gate.version_split import VersionChoice

        console = Console()
        if primary_version is not None and split_by_version is None:
            raise ConfigError("--primary-version needs --split-by-version")
        candidates = list(candidate or [])
        if (capacity is None) != (capacity_reference is None):
            raise ConfigError("--capacity and --capacity-reference go together: give both directories")
        if not candidates and capacity is None:
            raise ConfigError(
                "nothing to judge: give candidate run directories, or --capacity and --capacity-reference"
            )
        policy = load_policy(slo)
        collected = collect(candidates, list(reference), baseline)
        if capacity is not None and capacity_reference is not None:
            collect_capacity(collected, capacity, capacity_reference)
        choice = VersionChoice(split_by_version, primary_version, slices) if split_by_version else None
        verdict = judge_versions(policy, collected, choice)
        target = out or (candidates[0] if candidates else capacity or Path("."))
        files = write_all(verdict, policy, collected, target)
        print_verdict(console, verdict)
        console.print(f"report: [link=file://{files['report'].resolve()}]{escape(str(files['report']))}[/link]")
        if not verdict.passed:
            raise GateFailed(headline(verdict))
