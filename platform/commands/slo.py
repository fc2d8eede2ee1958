"""`rolescope slo generate | validate`: the SLO spec → Prometheus rules, and checks on both."""

from __future__ import annotations

from pathlib import Path

import typer

_SPEC_HELP = "SLO spec YAML (default: the bundled alerts/slo.yaml)."


def register(app: typer.Typer) -> None:
    slo_app = typer.Typer(
        name="slo",
        help="SLOs as code: generate recording rules and burn-rate alerts from the SLO spec, or validate it.",
        no_args_is_help=True,
    )

    @slo_app.command("generate")
    def generate(
        spec: Path | None = typer.Option(None, "--spec", "-s", help=_SPEC_HELP, show_default=False),
        out: Path | None = typer.Option(
            None,
            "--out",
            "-o",
            help="Output folder (default: the committed alerts/generated/).",
            show_default=False,
        ),
    ) -> None:
        """Write Prometheus rule files from the SLO spec.

        Per SLO: SLI error ratios over 5m, 30m, 1h, 2h, 6h, 1d, 3d and the
        period (Sloth's series names and labels, so Sloth's Grafana dashboards
        work unchanged), the error-budget metadata, and multi-window
        multi-burn-rate alerts — page at 14.4× over 1h/5m and 6× over 6h/30m,
        ticket at 3× over 1d/2h and 1× over 3d/6h. A second file holds the
        operational alerts (service down, timeouts rising, telemetry drops,
        saturation, memory per request above baseline).

        With no options it rewrites the committed alerts/generated/*.yaml
        (what `make golden` does).

        Examples:

          rolescope slo generate

          rolescope slo generate --spec my-slos.yaml --out /etc/prometheus/rules
        """
        from rich.console import Console
        from rich.markup import escape

        from rolescope.alerts.render import DEFAULT_SOURCE, default_output_dir, write_rule_files
        from rolescope.alerts.spec import load_slo_spec

        loaded = load_slo_spec(spec)
        target = out if out is not None else default_output_dir()
        written = write_rule_files(loaded, target, DEFAULT_SOURCE if spec is None else spec.name)
        console = Console()
        for path in written:
            console.print(f"wrote [bold]{escape(str(path))}[/]")

    @slo_app.command("validate")
    def validate(
        spec: Path | None = typer.Option(None, "--spec", "-s", help=_SPEC_HELP, show_default=False),
        promtool: bool = typer.Option(
            True, "--promtool/--no-promtool", help="Also run `promtool check rules` on the generated rules."
        ),
        check_generated: bool = typer.Option(
            False, "--check-generated", help="Fail if the committed alerts/generated/*.yaml are out of date."
        ),
    ) -> None:
        """Validate the SLO spec and the rules it generates; print a summary.

        The spec is checked field by field (objectives, periods, windows, and
        that every latency threshold is a bucket bound of its histogram); the
        rules it generates are checked with `promtool check rules` (Debian
        package `prometheus`).

        Examples:

          rolescope slo validate

          rolescope slo validate --spec my-slos.yaml --no-promtool

          rolescope slo validate --check-generated
        """
        from rich.console import Console

        from rolescope.alerts.spec import load_slo_spec
        from rolescope.alerts.validate import check_generated_files, promtool_check, summary_table

        loaded = load_slo_spec(spec)
        console = Console()
        console.print(summary_table(loaded))
        if promtool:
            console.print(promtool_check(loaded), markup=False)
        if check_generated:
            check_generated_files(loaded)
            console.print("alerts/generated/*.yaml are up to date")
        console.print(f"[green]valid:[/] {len(loaded.slos)} SLOs")

    app.add_typer(slo_app)
