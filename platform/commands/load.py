"""`rolescope load`: replay shadow traffic with Locust against a role service and write a run directory."""

from __future__ import annotations

from pathlib import Path

import typer

SHAPE_HELP = "step | spike | soak | ramp (peaks at --users); default: all users for the whole run."


def register(app: typer.Typer) -> None:
    @app.command("load")
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
        api: str = typer.Option(
            "rolescope",
            "--api",
            help="Target protocol: rolescope (POST /v1/chat) | openai (/v1/chat/completions) | template"
            " | websocket (/v1/ws, one connection per session).",
        ),
        template: Path | None = typer.Option(
            None, "--template", help="With --api template: the template YAML.", show_default=False
        ),
        model: str | None = typer.Option(
            None,
            "--model",
            help="Model to ask for (openai, {model} in a template); default: the traffic's role name.",
            show_default=False,
        ),
        header: list[str] = typer.Option(
            [], "--header", help="An extra request header, NAME:VALUE (repeatable).", show_default=False
        ),
        api_key_env: str | None = typer.Option(
            None,
            "--api-key-env",
            help="Environment variable holding the API key, sent as a Bearer token "
            "(default: OPENAI_API_KEY for openai, ROLESCOPE_LOAD_API_KEY otherwise; unset: no key).",
            show_default=False,
        ),
        max_tokens: int | None = typer.Option(
            None, "--max-tokens", min=1, help="openai: max_tokens of every request.", show_default=False
        ),
        ignore_eos: bool = typer.Option(False, "--ignore-eos", help="openai: send ignore_eos (vLLM)."),
        history_turns: int | None = typer.Option(
            None,
            "--history-turns",
            min=0,
            help="Stateless targets: resend at most this many earlier exchanges (default: all).",
            show_default=False,
        ),
        roles_dir: Path | None = typer.Option(
            None,
            "--roles-dir",
            "--role-file",
            help="Role file or folder: each role's persona is sent as the system message (openai, template).",
            show_default=False,
        ),
        roles: list[str] = typer.Option(
            [],
            "--roles",
            help="Keep or map the traffic's roles: sherlock keeps only sherlock; curie=sherlock sends "
            "curie's traffic to sherlock (repeatable or comma-separated).",
            show_default=False,
        ),
        request_timeout: str = typer.Option("60s", "--request-timeout", help="Timeout of one request."),
        insecure: bool = typer.Option(
            False, "--insecure", help="Do not verify the target's TLS certificate."
        ),
        ca: Path | None = typer.Option(
            None, "--ca", help="Verify TLS with this CA bundle (PEM).", show_default=False
        ),
        client_cert: Path | None = typer.Option(
            None,
            "--client-cert",
            help="Present this PEM certificate (mutual TLS); needs --client-key.",
            show_default=False,
        ),
        client_key: Path | None = typer.Option(
            None, "--client-key", help="The PEM private key of --client-cert.", show_default=False
        ),
        cpus: str | None = typer.Option(
            None,
            "--cpus",
            help="Pin the load generator to these CPUs (e.g. 0 or 0-1), so that on a shared machine it "
            "does not take the service's CPU time.",
            show_default=False,
        ),
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
        from rolescope.commands.load_target import TargetArgs, target_options
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
        timeout_s = parse_duration(request_timeout)
        if timeout_s <= 0:
            raise ConfigError(f"--request-timeout {request_timeout!r} must be more than zero")
        target = target_options(
            TargetArgs(
                api=api,
                template=template,
                model=model,
                headers=header,
                api_key_env=api_key_env,
                max_tokens=max_tokens,
                ignore_eos=ignore_eos,
                history_turns=history_turns,
                roles_path=roles_dir,
                roles=roles,
                insecure=insecure,
                ca_file=ca,
                client_cert=client_cert,
                client_key=client_key,
            )
        )
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
