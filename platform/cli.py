"""The `rolescope` command line: one Typer app, one module per command."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.markup import escape

from rolescope.errors import RolescopeError

# The order is the order `rolescope --help` lists them in.
COMMAND_MODULES: tuple[str, ...] = (
    "serve",
    "load",
    "traffic",
    "capture",
    "profile",
    "baseline",
    "tune",
    "capacity",
    "gate",
    "diff",
    "slo",
    "dashboards",
)

app = typer.Typer(
    name="rolescope",
    help=(
        "Observability and load testing for AI role-play chat services.\n\n"
        "Start with `rolescope tune --quick`: it runs the whole tuning loop on the embedded "
        "defaults and writes a report. Exit codes: 0 pass, 1 the gate failed, 2 usage or "
        "environment error."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"rolescope.commands.{_name}").register(app)

err_console = Console(stderr=True)


def main() -> None:
    try:
        app(standalone_mode=True)
    except RolescopeError as exc:
        # Printed verbatim: a message may quote a pattern such as `[a-z]{0,62}` or a command such as
        # `pip install 'rolescope[grafana]'`, neither of which is markup.
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
