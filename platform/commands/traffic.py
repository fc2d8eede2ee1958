"""`rolescope traffic`: redact, inspect and synthesise shadow traffic (JSONL, one request a line)."""

from __future__ import annotations

from pathlib import Path

import typer

traffic_app = typer.Typer(
    name="traffic",
    help="Shadow traffic: redact captured files, inspect them, synthesise samples.",
    no_args_is_help=True,
)


@traffic_app.command("redact")
def redact(
    source: Path = typer.Argument(..., help="Traffic JSONL to redact.", show_default=False),
    target: Path = typer.Argument(..., help="Where to write the redacted JSONL.", show_default=False),
    key_file: Path | None = typer.Option(
        None,
        "--key-file",
        help="Pseudonym key (default: $ROLESCOPE_CAPTURE_KEY_FILE or $ROLESCOPE_CAPTURE_KEY).",
        show_default=False,
    ),
) -> None:
    """Pseudonymise session and client ids and replace personal data and secrets in messages.

    E-mail addresses, phone numbers, card numbers (Luhn-checked), IP addresses,
    API keys, bearer tokens and URLs with credentials become placeholders that
    stay consistent within a session (`<EMAIL_1>` each time for one address).
    Ids become keyed-HMAC pseudonyms; keep the key away from the data. Without
    a key, a random one is used and the pseudonyms cannot be linked to any
    other file.

    Example:

      ROLESCOPE_CAPTURE_KEY_FILE=~/.rolescope/key rolescope traffic redact raw.jsonl clean.jsonl
    """
    from rich.console import Console

    from rolescope.errors import ConfigError
    from rolescope.loadtests.redaction import Redactor, load_key
    from rolescope.loadtests.traffic_format import dump_record, iter_traffic

    key, ephemeral = load_key(key_file)
    redactor = Redactor(key)
    count = 0
    if source.resolve() == target.resolve():
        raise ConfigError(f"redact would overwrite its input {source}; give another output path")
    with target.open("w", encoding="utf-8") as out:
        for record in iter_traffic(source):
            session = redactor.pseudonym(record.session, "s")
            clean = record.model_copy(
                update={
                    "session": session,
                    "client": redactor.pseudonym(record.client, "c") if record.client else None,
                    "message": redactor.redact_message(session, record.message),
                }
            )
            out.write(dump_record(clean) + "\n")
            count += 1
    console = Console()
    console.print(f"redacted {count} records → {target}", markup=False)
    if ephemeral:
        console.print("[yellow]note:[/] no key given; pseudonyms used a random key and cannot be linked.")


@traffic_app.command("inspect")
def inspect(
    path: Path | None = typer.Argument(
        None, help="Traffic JSONL (default: the bundled sample).", show_default=False
    ),
) -> None:
    """Show what a traffic file holds: sessions, turns, roles, rate, message-length and gap distributions.

    Examples:

      rolescope traffic inspect

      rolescope traffic inspect captured.jsonl
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from rolescope.loadtests.inspect_traffic import summarize
    from rolescope.loadtests.traffic_format import default_traffic_path, read_traffic

    source = path or default_traffic_path()
    summary = summarize(read_traffic(source))
    console = Console()
    console.print(f"[bold]{escape(str(source))}[/]")
    console.print(
        f"{summary.requests} requests in {summary.sessions} sessions over {summary.span_s:.0f} s "
        f"({summary.rate_rps:.2f} req/s); {summary.stream_share:.0%} streamed"
    )
    roles = ", ".join(f"{name} {count}" for name, count in summary.roles.items())
    console.print(f"roles: {roles}", markup=False)
    console.print("original statuses: " + ", ".join(f"{code} {n}" for code, n in summary.statuses.items()))
    table = Table(title="distributions")
    for column in ("", "p50", "p90", "p99", "max"):
        table.add_column(column, justify="right" if column else "left")
    for label, spread in (
        ("turns per session", summary.turns_per_session),
        ("message characters", summary.message_chars),
        ("gap between turns (s)", summary.gap_s),
        ("original latency (s)", summary.original_latency_s),
    ):
        table.add_row(label, *(f"{v:.2f}" for v in (spread.p50, spread.p90, spread.p99, spread.max)))
    console.print(table)


@traffic_app.command("synth")
def synth(
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Where to write (default: standard output).", show_default=False
    ),
    sessions: int = typer.Option(300, "--sessions", min=1, max=1_000_000, help="Sessions to generate."),
    seed: int = typer.Option(7, "--seed", help="Same seed, same file."),
    roles: str = typer.Option("sherlock,curie,grimble", "--roles", help="Comma-separated role names."),
) -> None:
    """Generate realistic synthetic conversations for the bundled roles, deterministic for a seed.

    The bundled sample is `rolescope traffic synth --out loadtests/traffic/sample.jsonl`.

    Examples:

      rolescope traffic synth --sessions 50 --seed 1 --out small.jsonl

      rolescope traffic synth --roles sherlock | head
    """
    import sys

    from rolescope.errors import ConfigError
    from rolescope.loadtests.synth import SynthOptions, synthesize
    from rolescope.loadtests.traffic_format import write_traffic

    names = tuple(r.strip() for r in roles.split(",") if r.strip())
    if not names:
        raise ConfigError("--roles is empty; expected comma-separated role names such as sherlock,curie")
    records = synthesize(SynthOptions(sessions=sessions, seed=seed, roles=names))
    if out is None:
        write_traffic(records, sys.stdout)
        return
    with out.open("w", encoding="utf-8") as handle:
        write_traffic(records, handle)


def register(app: typer.Typer) -> None:
    app.add_typer(traffic_app, name="traffic")
