"""`rolescope slo generate | validate | export | import`: the SLO spec → rules, checks, OpenSLO."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

_SPEC_HELP = "SLO spec YAML (default: the bundled alerts/slo.yaml)."


def register(app: typer.Typer) -> None:
    slo_app = typer.Typer(
        name="slo",
        help=(
            "SLOs as code: generate recording rules and burn-rate alerts from the SLO spec, validate it, "
            "or exchange it with OpenSLO v1."
        ),
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

    @slo_app.command("export")
    def export(
        spec: Path | None = typer.Option(None, "--spec", "-s", help=_SPEC_HELP, show_default=False),
        fmt: str = typer.Option("openslo", "--format", "-f", help="Output format: openslo (OpenSLO v1)."),
        out: Path | None = typer.Option(
            None, "--out", "-o", help="Write to this file (default: standard output).", show_default=False
        ),
    ) -> None:
        """Write the SLO spec as OpenSLO v1 documents (YAML, one document each).

        One `Service` document, then per SLO a `kind: SLO` with an inline
        indicator: a `ratioMetric` of Prometheus rate queries over
        `{{.window}}` (a latency SLI as its histogram bucket over its count),
        a rolling window of the SLO's period, Occurrences budgeting and one
        objective. What OpenSLO has no field for (alert names and labels, the
        gate's tolerances) travels as `rolescope/…` annotations, so
        `rolescope slo import` gives back the same spec.

        Examples:

          rolescope slo export --format openslo

          rolescope slo export --spec my-slos.yaml --out openslo.yaml
        """
        from rolescope.alerts.openslo import export_openslo, openslo_yaml
        from rolescope.alerts.spec import load_slo_spec
        from rolescope.errors import ConfigError

        if fmt != "openslo":
            raise ConfigError(f"--format {fmt!r}: the only export format is openslo")
        text = openslo_yaml(export_openslo(load_slo_spec(spec)))
        _emit(text, out)

    @slo_app.command("import")
    def import_(
        source: Path = typer.Argument(..., help="An OpenSLO v1 YAML file (several documents allowed)."),
        out: Path | None = typer.Option(
            None, "--out", "-o", help="Write the spec here (default: standard output).", show_default=False
        ),
    ) -> None:
        """Read OpenSLO v1 ratio and threshold SLOs into a rolescope SLO spec.

        A `ratioMetric` with good or bad over total (Prometheus rate queries
        over `{{.window}}`, or bare counter selectors with `counter: true`)
        becomes an events SLI — or a latency SLI when it is a rolescope
        histogram's bucket over its count; a `thresholdMetric` on a rolescope
        latency histogram with `op: lte` becomes a latency SLI. What the spec
        cannot hold (raw ratios, time slices, calendar windows, several
        objectives, other data sources) is listed per document and field,
        exit code 2. Alert policies are left out: rolescope generates its own
        multi-window multi-burn-rate alerts.

        Examples:

          rolescope slo import openslo.yaml --out slo.yaml

          rolescope slo import openslo.yaml && rolescope slo generate --spec slo.yaml
        """
        from rich.console import Console

        from rolescope.alerts.openslo import spec_yaml
        from rolescope.alerts.openslo_import import import_openslo, read_openslo_file

        result = import_openslo(read_openslo_file(source), str(source))
        for note in result.notes:
            Console(stderr=True).print(f"[yellow]note:[/] {note}", highlight=False)
        header = f"# Imported by `rolescope slo import` from {source.name}.\n"
        _emit(header + spec_yaml(result.spec), out)

    app.add_typer(slo_app)


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    sys.stderr.write(f"wrote {out}\n")
