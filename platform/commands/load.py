"""`rolescope load`: replay shadow traffic with Locust against a role service and write a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from rolescope.commands.target_flags import with_target_options

if TYPE_CHECKING:
    from rolescope.commands.load_target import TargetArgs

SHAPE_HELP = "step | spike | soak | ramp (peaks at --users); default: all users for the whole run."


def register(app: typer.Typer) -> None:
    @app.command("load")
    @with_target_options(roles_flag="--roles")
    def load(
        host: str = typer.Option(
            ..., "--host", "-H", help="Base URL of the role service.", show_default=False
        ),
        out: Path = typer.Option(..., "--out", "-o", help="Run directory to write.", show_default=False),
        traffic: Path | None = typer.Option(
            None, "--traffic", help="Shadow traffic JSONL (default: the bundled sample).", show_default=False
        ),
        users: int = typer.Option(10, "--users", "-u", min=1, help="Simulated users (closed model)."),
        spawn_rate: float = typer.Option(
            10.0, "--spawn-rate", "-r", min=0.001, help="Users started per second."
        ),
        rate: float | None = typer.Option(
            None,
            "--rate",
            min=0.001,
            help="Open model: requests per second, whatever the latency.",
            show_default=False,
        ),
        arrival: str = typer.Option("poisson", "--arrival", help="Open-model arrivals: poisson | constant."),
        speed: float = typer.Option(1.0, "--speed", min=0.0001, help="Replay speed: recorded gaps / speed."),
        sessions_share: float = typer.Option(
            1.0, "--sessions-share", min=0.0001, max=1.0, help="Share of recorded sessions to replay."
        ),
        shape: str | None = typer.Option(None, "--shape", help=SHAPE_HELP, show_default=False),
        duration: str = typer.Option("60s", "--duration", "-t", help="Run time: 30s, 2m, 1h30m."),
        processes: int = typer.Option(
            1, "--processes", "-p", min=1, max=64, help="Locust processes (master/workers)."
        ),
        metrics_port: int | None = typer.Option(
            None,
            "--metrics-port",
            help="Serve the load generator's Prometheus metrics on this port.",
            show_default=False,
        ),
        user: str = typer.Option("replay", "--user", help="replay (follow each record) | chat | stream."),
        seed: int = typer.Option(0, "--seed", help="Seed of session selection and arrivals."),
        cpus: str | None = typer.Option(
            None,
            "--cpus",
            help="Pin the load generator to these CPUs (e.g. 0 or 0-1), so that on a shared machine it "
            "does not take the service's CPU time.",
            show_default=False,
        ),
        *,
        target_args: TargetArgs,
    ) -> None:
        """Replay shadow traffic against a role service with Locust, headless, and measure client-side SLIs.

        Closed model (default): --users replay recorded sessions, keeping each
        session's turn order and its recorded gaps divided by --speed. Open
        model (--rate): requests arrive at that rate whatever the latency, and
        latency counts from the intended send time, so a slow service cannot
        hide load (coordinated omission).

        The run directory holds settings.json, environment.json, Locust's
        CSV / JSON / HTML reports, samples.jsonl (one line per request) and
        slis.json: TTFT, TPOT, inter-token and end-to-end percentiles from
        every sample, throughput, error ratio and goodput.

        Before any load the target is checked once: it answers the protocol,
        accepts the key and serves every role (or model) the traffic names.
        Everything that would go wrong is listed on one screen and nothing is
        sent (exit 2).

        Examples:

          rolescope load --host http://127.0.0.1:8080 --duration 30s --out runs/smoke

          rolescope load -H http://127.0.0.1:8080 --rate 50 --arrival poisson -t 2m --out runs/open

          rolescope load -H http://127.0.0.1:8080 --users 40 --shape step --processes 2 \\
              --metrics-port 9646 -t 5m --out runs/step

          rolescope load -H http://127.0.0.1:8000 --api openai --model my-model --roles-dir examples \\
              --history-turns 8 --max-tokens 128 -t 1m --out runs/vllm

          rolescope load -H http://127.0.0.1:8080 --roles sherlock,curie=sherlock -t 30s --out runs/one-role

          taskset -c 1 rolescope serve &  rolescope load -H http://127.0.0.1:8080 --rate 100 --cpus 0 \\
              -t 1m --out runs/pinned      # service and load generator on separate cores
        """
        from rolescope.commands.load_target import target_options
        from rolescope.commands.load_view import check_target_or_exit, print_slis, run_with_progress
        from rolescope.errors import ConfigError
        from rolescope.loadtests.load_config import parse_duration
        from rolescope.loadtests.runner import LoadOptions
        from rolescope.loadtests.stages import SHAPES

        if shape is not None and shape not in SHAPES:
            raise ConfigError(f"--shape {shape!r} is not a load shape; expected one of {', '.join(SHAPES)}")
        if arrival not in ("poisson", "constant"):
            raise ConfigError(f"--arrival {arrival!r} is not known; expected poisson or constant")
        if user not in ("replay", "chat", "stream"):
            raise ConfigError(f"--user {user!r} is not known; expected replay, chat or stream")
        if not host.startswith(("http://", "https://")):
            raise ConfigError(f"--host {host!r} must be a URL such as http://127.0.0.1:8080")
        timeout_s = target_args.timeout_s()
        target = target_options(target_args)
        options = LoadOptions(
            host=host.rstrip("/"),
            out=out,
            traffic=traffic,
            users=users,
            spawn_rate=spawn_rate,
            rate=rate,
            arrival=arrival,  # type: ignore[arg-type]
            speed=speed,
            sessions_share=sessions_share,
            shape=shape,  # type: ignore[arg-type]
            duration_s=parse_duration(duration),
            processes=processes,
            metrics_port=metrics_port,
            user=user,  # type: ignore[arg-type]
            seed=seed,
            cpus=cpus,
            timeout_s=timeout_s,
            target=target,
        )
        check_target_or_exit(options.host, target, traffic, options.user, min(timeout_s, 30.0))
        run_dir = run_with_progress(options)
        print_slis(run_dir)
