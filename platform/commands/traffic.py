"""`rolescope traffic`: redact, inspect and synthesise shadow traffic (JSONL, one request a line)."""

from __future__ import annotations

from pathlib import Path

import typer

traffic_app = typer.Typer(
    name="traffic",
    help="Shadow traffic: redact captured files, inspect them, synthesise samples, import from elsewhere.",
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
    API keys, bearer tokens and URLs with credentials, plus what detect-secrets
    and phonenumbers recognise (vendor tokens, private keys, secrets assigned
    to key-like names, high-entropy strings after key-like words, phone
    numbers in any national format), become placeholders that stay consistent
    within a session (`<EMAIL_1>` each time for one address).
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
    sessions: int = typer.Option(
        300, "--sessions", "--num-sessions", min=1, max=1_000_000, help="Sessions to generate."
    ),
    seed: int = typer.Option(7, "--seed", "--random-seed", help="Same seed, same file."),
    roles: str = typer.Option("sherlock,curie,grimble", "--roles", help="Comma-separated role names."),
    rate: float = typer.Option(0.5, "--rate", min=0.0001, help="New sessions per second (Poisson)."),
    isl: int | None = typer.Option(
        None,
        "--isl",
        "--input-tokens-mean",
        min=1,
        help="Mean input length in tokens; switches to a workload by distribution.",
        show_default=False,
    ),
    isl_stddev: float = typer.Option(0.0, "--isl-stddev", "--input-tokens-stddev", min=0.0),
    isl_histogram: Path | None = typer.Option(
        None,
        "--isl-histogram",
        help="Input lengths from a histogram file (TOKENS,COUNT or LOW-HIGH,COUNT a line).",
        show_default=False,
    ),
    osl: int | None = typer.Option(
        None,
        "--osl",
        "--output-tokens-mean",
        min=1,
        help="Mean requested output length (recorded as max_tokens).",
        show_default=False,
    ),
    osl_stddev: float = typer.Option(0.0, "--osl-stddev", "--output-tokens-stddev", min=0.0),
    osl_histogram: Path | None = typer.Option(
        None, "--osl-histogram", help="Output lengths from a histogram file.", show_default=False
    ),
    prefix_tokens: int = typer.Option(
        0, "--prefix-tokens", min=0, max=10_000, help="Tokens of a prefix shared by every message of a role."
    ),
    turns_mean: float = typer.Option(
        1.0, "--turns-mean", "--conversation-turn-mean", min=1.0, help="Mean turns per session."
    ),
    turns_stddev: float = typer.Option(0.0, "--turns-stddev", "--conversation-turn-stddev", min=0.0),
    delay_mean_ms: float = typer.Option(
        0.0,
        "--turn-delay-mean",
        "--conversation-turn-delay-mean",
        min=0.0,
        help="Mean think time between a reply and the next turn, milliseconds.",
    ),
    delay_stddev_ms: float = typer.Option(
        0.0, "--turn-delay-stddev", "--conversation-turn-delay-stddev", min=0.0
    ),
) -> None:
    """Generate synthetic conversations, deterministic for a seed.

    Without length options: realistic role-play chats for the bundled roles
    (the bundled sample is `rolescope traffic synth --out loadtests/traffic/sample.jsonl`).
    With `--isl` or `--isl-histogram`: a workload by distribution as AIPerf and
    GuideLLM describe one (the same option names where they have them). Lengths
    are fixed, normal (mean and stddev, clipped at 1) or drawn from a histogram;
    a token is one common English word.

    Examples:

      rolescope traffic synth --sessions 50 --seed 1 --out small.jsonl

      rolescope traffic synth --isl 512 --isl-stddev 64 --osl 128 --prefix-tokens 1000 \\
        --turns-mean 4 --turns-stddev 1 --turn-delay-mean 3000 --out workload.jsonl
    """
    import sys

    from rolescope.errors import ConfigError
    from rolescope.loadtests.synth import SynthOptions, synthesize
    from rolescope.loadtests.traffic_format import write_traffic, write_traffic_file

    names = tuple(r.strip() for r in roles.split(",") if r.strip())
    if not names:
        raise ConfigError("--roles is empty; expected comma-separated role names such as sherlock,curie")
    workload_flags = (
        osl is not None or osl_histogram is not None or prefix_tokens > 0 or turns_mean > 1 or isl_stddev > 0
    )
    if isl is None and isl_histogram is None and not workload_flags:
        classic = SynthOptions(sessions=sessions, seed=seed, roles=names, sessions_per_second=rate)
        records = synthesize(classic)
    else:
        from rolescope.loadtests.synth_workload import build_workload_options, synthesize_workload

        options = build_workload_options(
            isl=isl,
            isl_stddev=isl_stddev,
            isl_histogram=isl_histogram,
            osl=osl,
            osl_stddev=osl_stddev,
            osl_histogram=osl_histogram,
            prefix_tokens=prefix_tokens,
            turns_mean=turns_mean,
            turns_stddev=turns_stddev,
            delay_mean_ms=delay_mean_ms,
            delay_stddev_ms=delay_stddev_ms,
            sessions=sessions,
            seed=seed,
            roles=names,
            sessions_per_second=rate,
        )
        records = synthesize_workload(options)
    if out is None:
        write_traffic(records, sys.stdout)
    else:
        write_traffic_file(records, out)


@traffic_app.command("import")
def import_traffic(
    source: Path = typer.Argument(..., help="The file to import.", show_default=False),
    source_format: str = typer.Option(
        ..., "--from", help="openai-jsonl, sharegpt or otel-genai.", show_default=False
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Where to write the traffic JSONL.", show_default=False
    ),
    role: str = typer.Option(
        "sherlock", "--role", help="Role of every session (OTel spans with gen_ai.agent.name keep theirs)."
    ),
    rate: float = typer.Option(
        0.5, "--rate", min=0.0001, help="New sessions per second, for formats without times (Poisson)."
    ),
    think_time: float = typer.Option(
        5.0, "--think-time", min=0.0, help="Seconds between an answer and the next turn, without times."
    ),
    stream: bool = typer.Option(True, "--stream/--no-stream", help="Stream flag where the source has none."),
    seed: int = typer.Option(7, "--seed", help="Seed of the synthetic arrivals."),
    key_file: Path | None = typer.Option(
        None,
        "--key-file",
        help="Pseudonym key (default: $ROLESCOPE_CAPTURE_KEY_FILE or $ROLESCOPE_CAPTURE_KEY).",
        show_default=False,
    ),
) -> None:
    """Turn conversations from elsewhere into redacted rolescope traffic.

    Formats: `openai-jsonl` (a Chat Completions `messages` list, one
    conversation a line), `sharegpt` (a JSON array or JSON Lines of
    {"id", "conversations": [{"from", "value"}]}), `otel-genai` (OTLP-JSON spans
    with OpenTelemetry GenAI attributes, as the Collector's file exporter
    writes them). Sessions get keyed-HMAC pseudonyms and messages are redacted
    as capture does. OTel spans give real arrival times; the other formats get
    Poisson session arrivals at `--rate` and `--think-time` between turns. Any
    bad input is listed in full (file, line, field), exit code 2, and no output
    file is written.

    Examples:

      rolescope traffic import --from sharegpt ShareGPT_V3.json --out sharegpt.jsonl --rate 2

      rolescope traffic import --from otel-genai traces.jsonl --out prod.jsonl
    """
    from rich.console import Console
    from rich.progress import Progress

    from rolescope.errors import ConfigError
    from rolescope.loadtests.importers import IMPORTERS
    from rolescope.loadtests.importers.build import ImportOptions, build_records
    from rolescope.loadtests.redaction import Redactor, load_key
    from rolescope.loadtests.traffic_format import write_traffic_file

    importer = IMPORTERS.get(source_format)
    if importer is None:
        raise ConfigError(
            f"--from {source_format!r} is not a known format; expected one of {', '.join(IMPORTERS)}"
        )
    if out.exists() and source.exists() and out.resolve() == source.resolve():
        raise ConfigError(f"import would overwrite its input {source}; give another --out")
    key, ephemeral = load_key(key_file)
    result = importer.read(source)
    options = ImportOptions(
        role=role, sessions_per_second=rate, think_time_s=think_time, stream=stream, seed=seed
    )
    console = Console(stderr=True)
    # Redaction dominates a large import (a ShareGPT dump is hundreds of thousands of turns).
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("redacting", total=len(result.conversations))
        records, problems = build_records(
            result.conversations, options, Redactor(key), lambda: progress.advance(task)
        )
    problems = result.problems + problems
    if problems:
        shown = problems[:50]
        more = f"\n… and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise ConfigError(
            f"{len(problems)} problem(s) in {source}, nothing written:\n" + "\n".join(shown) + more
        )
    write_traffic_file(records, out)
    console = Console()
    timing = (
        "arrival times from the source"
        if importer.timed
        else f"synthetic arrivals: {rate:g} sessions/s, {think_time:g} s think time"
    )
    console.print(
        f"imported {len(records)} requests in {len(result.conversations)} sessions from {source} "
        f"({importer.name}; {timing}) → {out}"
    )
    if ephemeral:
        console.print("[yellow]note:[/] no key given; pseudonyms used a random key and cannot be linked.")


def register(app: typer.Typer) -> None:
    app.add_typer(traffic_app, name="traffic")
