"""One module per CLI command. Each exposes `register(app: typer.Typer) -> None`.

Command modules import only typer/rich at module level; heavy dependencies
(locust, which monkey-patches the standard library through gevent, memray,
matplotlib, ...) are imported inside the command function, so `rolescope --help`
is fast and `rolescope serve` never loads the load generator.
"""
