"""`rolescope dashboards build | provision | preview`: Grafana dashboards as code."""

from __future__ import annotations

from pathlib import Path

import typer

_SPEC_HELP = "SLO spec YAML for the SLO dashboard (default: the bundled alerts/slo.yaml)."


def register(app: typer.Typer) -> None:
    dash_app = typer.Typer(
        name="dashboards",
        help="Grafana dashboards as code: build the JSON, publish it to a Grafana, or preview panels as PNG.",
        no_args_is_help=True,
    )

    @dash_app.command("build")
    def build(
        spec: Path | None = typer.Option(None, "--spec", "-s", help=_SPEC_HELP, show_default=False),
        out: Path | None = typer.Option(
            None,
            "--out",
            "-o",
            help="Output folder (default: the committed dashboards/).",
            show_default=False,
        ),
    ) -> None:
        """Build the five dashboards (grafana-foundation-sdk) and write <uid>.json files.

        Service overview (RED per role), streaming (TTFT / TPOT heatmaps and
        percentiles, tokens per second), SLOs (SLI vs objective, burn rates,
        budget remaining), load test (the Locust exporter) and tuning (memory
        per request vs baseline, profile links). Each has a stable uid and a
        Prometheus datasource variable. With no options it rewrites the
        committed dashboards/*.json (what `make golden` does).

        Examples:

          rolescope dashboards build

          rolescope dashboards build --spec my-slos.yaml --out grafana/
        """
        from rich.console import Console
        from rich.markup import escape

        from rolescope.alerts.spec import load_slo_spec
        from rolescope.dashboards.build import default_output_dir, write_dashboards

        written = write_dashboards(out if out is not None else default_output_dir(), load_slo_spec(spec))
        console = Console()
        for path in written:
            console.print(f"wrote [bold]{escape(str(path))}[/]")

    @dash_app.command("provision")
    def provision(
        url: str = typer.Option(..., "--url", help="Grafana base URL, e.g. http://127.0.0.1:3000."),
        token: str | None = typer.Option(
            None,
            "--token",
            envvar="GRAFANA_TOKEN",
            help="Service account token (or env GRAFANA_TOKEN).",
            show_default=False,
        ),
        user: str | None = typer.Option(None, "--user", help="Basic-auth user.", show_default=False),
        password: str | None = typer.Option(
            None,
            "--password",
            envvar="GRAFANA_PASSWORD",
            help="Basic-auth password (or env GRAFANA_PASSWORD).",
            show_default=False,
        ),
        folder: str = typer.Option("rolescope", "--folder", help="Folder title (created if missing)."),
        source: Path | None = typer.Option(
            None,
            "--from",
            help="Folder of dashboard JSON (default: the committed dashboards/).",
            show_default=False,
        ),
    ) -> None:
        """Upsert the dashboards into a Grafana folder, overwriting by uid (needs rolescope[grafana]).

        The folder is created when missing; each dashboard is written with
        overwrite on, so re-running updates in place and links stay valid.

        Examples:

          rolescope dashboards provision --url http://127.0.0.1:3000 --token $GRAFANA_TOKEN

          rolescope dashboards provision --url http://grafana:3000 --user admin --password admin --folder SRE
        """
        from rich.console import Console
        from rich.markup import escape

        from rolescope.dashboards.build import default_output_dir, load_dashboards
        from rolescope.dashboards.provision import credential_from, require_grafana_client
        from rolescope.dashboards.provision import provision as upsert
        from rolescope.errors import ConfigError

        require_grafana_client()  # before any other work: say what to install first
        folder_path = source if source is not None else default_output_dir()
        dashboards = load_dashboards(folder_path)
        if not dashboards:
            raise ConfigError(
                f"{folder_path}: no rolescope-*.json dashboards; run `rolescope dashboards build`"
            )
        done = upsert(dashboards, url, credential_from(token, user, password), folder=folder)
        console = Console()
        for item in done:
            console.print(
                f"provisioned [bold]{escape(item.title)}[/] "
                + escape(f"(uid {item.uid}, version {item.version}) {item.url}")
            )

    @dash_app.command("preview")
    def preview(
        prometheus: str = typer.Option(
            ..., "--prometheus", help="Prometheus base URL, e.g. http://127.0.0.1:9090."
        ),
        out: Path = typer.Option(..., "--out", "-o", help="Folder for the PNGs and index.html."),
        minutes: float = typer.Option(30.0, "--minutes", min=1, help="How far back to draw."),
        rate_interval: str = typer.Option("1m", "--rate-interval", help="Stands in for $__rate_interval."),
        source: Path | None = typer.Option(
            None,
            "--from",
            help="Folder of dashboard JSON (default: the committed dashboards/).",
            show_default=False,
        ),
    ) -> None:
        """Render every panel's data from a Prometheus to PNG, without Grafana.

        One PNG per panel under OUT/<dashboard uid>/ and an OUT/index.html
        showing them in dashboard order.

        Examples:

          rolescope dashboards preview --prometheus http://127.0.0.1:9090 --out runs/preview

          rolescope dashboards preview --prometheus http://127.0.0.1:9090 --out p --minutes 10
        """
        from rich.console import Console
        from rich.markup import escape
        from rich.progress import Progress

        from rolescope.dashboards.build import default_output_dir, iter_panels, load_dashboards
        from rolescope.dashboards.preview import preview as render

        dashboards = load_dashboards(source if source is not None else default_output_dir())
        total = sum(1 for d in dashboards.values() for p in iter_panels(d) if p.get("targets"))
        with Progress(transient=True) as progress:
            task = progress.add_task("rendering panels", total=total)
            rendered = render(
                dashboards,
                prometheus,
                out,
                minutes=minutes,
                rate_interval=rate_interval,
                progress=lambda _: progress.advance(task),
            )
        console = Console()
        empty = [r for r in rendered if r.series == 0]
        console.print(
            f"wrote {len(rendered)} panels to [bold]{escape(str(out))}[/] ({len(empty)} without data); "
            + escape(f"open {out / 'index.html'}")
        )
        for item in rendered:
            if item.error:
                where = escape(f"{item.dashboard_uid} / {item.panel_title}:")
                console.print(f"[yellow]{where}[/] {escape(item.error)}")

    app.add_typer(dash_app)
