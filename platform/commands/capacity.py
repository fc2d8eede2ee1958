"""`rolescope capacity`: the highest arrival rate one replica takes while every SLO holds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from rolescope.commands.target_flags import with_target_options

if TYPE_CHECKING:
    from rolescope.commands.load_target import TargetArgs


def register(app: typer.Typer) -> None:
    @app.command("capacity")
    @with_target_options(roles_flag="--target-roles")
    def capacity(
        target: str | None = typer.Option(
            None,
            "--target",
            help="Measure a running service at this URL (any --api) instead of launching one.",
            show_default=False,
        ),
        metrics_url: str | None = typer.Option(
            None,
            "--metrics-url",
            help="With --target: the service's Prometheus metrics (default: <target>/metrics).",
            show_default=False,
        ),
        prometheus: str | None = typer.Option(
            None,
            "--prometheus",
            help="With --target: read each step's server figures from this Prometheus (its HTTP API, "
            "e.g. http://prometheus:9090) over the step's window instead of scraping /metrics.",
            show_default=False,
        ),
        prometheus_selector: str = typer.Option(
            "",
            "--prometheus-selector",
            help='With --prometheus: label matchers that pick the service\'s series, e.g. job="chat".',
            show_default=False,
        ),
        join_traces: bool = typer.Option(
            False,
            "--join-traces",
            help="Receive the service's spans (OTLP/HTTP, every request sampled) and join each request's "
            "client and server TTFT by trace id; a launched service is pointed at the receiver, a --target "
            "must export there itself. 100 % sampling costs the service CPU: it lowers the capacity found.",
        ),
        trace_port: int = typer.Option(
            0,
            "--trace-port",
            min=0,
            max=65535,
            help="With --join-traces: the receiver's port on 127.0.0.1 (default: any free one).",
            show_default=False,
        ),
        out: Path | None = typer.Option(
            None,
            "--out",
            "-o",
            help="Run directory (default: runs/capacity-<timestamp>).",
            show_default=False,
        ),
        slo: Path | None = typer.Option(
            None, "--slo", help="SLO spec (default: bundled).", show_default=False
        ),
        precision: float = typer.Option(
            0.05, "--precision", help="Stop when the capacity is known within this share (high ÷ low − 1)."
        ),
        time_budget: str = typer.Option("10m", "--time-budget", help="Stop the search after this long."),
        start_rate: float | None = typer.Option(
            None,
            "--start-rate",
            min=0.001,
            help="First probe, req/s (default: 1 ÷ the time of one request on the idle service).",
            show_default=False,
        ),
        max_rate: float = typer.Option(5000.0, "--max-rate", min=0.01, help="Never offer more than this."),
        min_requests: int | None = typer.Option(
            None,
            "--min-requests",
            min=10,
            help="Judged requests per full step (default: enough for the strictest objective's tail).",
            show_default=False,
        ),
        max_step: float = typer.Option(30.0, "--max-step", min=2.0, help="Longest step, seconds."),
        user: str = typer.Option("replay", "--user", help="replay (follow each record) | chat | stream."),
        traffic: Path | None = typer.Option(
            None, "--traffic", help="Shadow traffic JSONL (default: the bundled sample).", show_default=False
        ),
        target_rate: float | None = typer.Option(
            None,
            "--target-rate",
            min=0.001,
            help="Size a deployment for this many req/s: replicas, HPA target, Helm values.",
            show_default=False,
        ),
        headroom: float = typer.Option(
            0.3, "--headroom", min=0.0, max=0.95, help="Share of each replica's capacity kept free."
        ),
        fault: list[str] = typer.Option(
            [], "--fault", help="Plant a regression in the launched service, e.g. cpu_per_token_us=200."
        ),
        setting: list[str] = typer.Option(
            [], "--set", help="A setting of the launched service, e.g. concurrency_limit=32 (repeatable)."
        ),
        roles: Path | None = typer.Option(
            None,
            "--roles",
            help="Role file or folder to serve (default: the bundled roles).",
            show_default=False,
        ),
        cpus: str | None = typer.Option(
            None, "--cpus", help="Pin the load generator to these CPUs (e.g. 0).", show_default=False
        ),
        *,
        target_args: TargetArgs,
    ) -> None:
        """Find the highest arrival rate at which every SLO holds: exit 0 found, 1 none held, 2 usage.

        A short probe doubles the Poisson arrival rate until an SLO breaks, then
        full steps confirm the bracket and bisect it until it is known within
        --precision. Every step is a `rolescope load` run (load-N/) judged by the
        SLO spec — goodput, each latency objective, the error budget — with
        latency counted from each request's intended send time; a step ends early
        once it has failed for certain (errors beyond the whole step's budget, or
        a queue of in-flight requests that keeps growing). The service's own
        /metrics is scraped at each step's start and end, so server-side TTFT,
        duration, in-flight requests and CPU stand beside the client's figures.

        Writes capacity.json, summary.md and report.html; with --target-rate also
        helm-values.yaml (replicaCount, HPA target per pod, concurrency limit).

        Examples:

          rolescope capacity

          rolescope capacity --target-rate 200 --headroom 0.3

          rolescope capacity --target http://127.0.0.1:8080 --precision 0.1 --time-budget 5m

          rolescope capacity --set concurrency_limit=16 --user chat

          rolescope capacity --join-traces --user stream

          rolescope capacity --target http://chat.internal:8080 --prometheus http://prometheus:9090 \\
              --prometheus-selector 'job="chat"'

          rolescope capacity --target https://vllm.internal:8000 --api openai --model my-model \\
              --roles-dir examples --ca ca.pem --client-cert me.pem --client-key me-key.pem
        """
        from rich.console import Console

        from rolescope.capacity.options import CapacityOptions
        from rolescope.capacity.report import headline, sizing_lines
        from rolescope.capacity.run import run_capacity
        from rolescope.commands.load_target import target_options
        from rolescope.commands.tune import _faults, _settings
        from rolescope.errors import ConfigError, GateFailed
        from rolescope.loadtests.load_config import parse_duration

        if user not in ("replay", "chat", "stream"):
            raise ConfigError(f"--user {user!r} is not known; expected replay, chat or stream")
        if metrics_url is not None and target is None:
            raise ConfigError(
                "--metrics-url only makes sense with --target (a launched service is scraped anyway)"
            )
        if target is not None and (fault or setting or roles):
            raise ConfigError(
                "--fault, --set and --roles change a launched service; they cannot go with --target"
            )
        if prometheus is not None and target is None:
            raise ConfigError("--prometheus needs --target URL (a launched service is scraped directly)")
        if trace_port and not join_traces:
            raise ConfigError("--trace-port needs --join-traces")
        if prometheus_selector and prometheus is None:
            raise ConfigError("--prometheus-selector needs --prometheus URL")
        tls = target_args.insecure or target_args.ca_file or target_args.client_cert or target_args.client_key
        if target is None and tls:
            raise ConfigError(
                "--insecure, --ca, --client-cert and --client-key need --target URL "
                "(the launched service speaks plain HTTP)"
            )
        timeout_s = target_args.timeout_s()
        protocol = target_options(target_args)
        if target is not None:
            from rolescope.capacity.run import check_target
            from rolescope.commands.load_view import check_target_or_exit

            check_target(target, protocol)
            # Before any load: the running service answers, accepts the key, serves every role replayed.
            check_target_or_exit(
                target.rstrip("/"),
                protocol,
                traffic,
                user,  # type: ignore[arg-type]
                min(timeout_s, 30.0),
                roles_option="--target-roles",
            )
        options = CapacityOptions(
            out=out,
            target=target,
            slo=slo,
            roles=roles,
            settings=_settings(setting),
            faults=_faults(fault),
            precision=precision,
            time_budget_s=parse_duration(time_budget),
            start_rate=start_rate,
            max_rate=max_rate,
            min_requests=min_requests,
            max_step_s=max_step,
            user=user,  # type: ignore[arg-type]
            traffic=traffic,
            target_rate=target_rate,
            headroom=headroom,
            cpus=cpus,
            metrics_url=metrics_url,
            target_options=protocol,
            timeout_s=timeout_s,
            prometheus=prometheus,
            prometheus_selector=prometheus_selector,
            join_traces=join_traces,
            trace_port=trace_port,
        )
        console = Console(stderr=True)
        with console.status("starting") as spinner:
            outcome = run_capacity(options, _Progress(console, spinner))
        stdout = Console()
        for line in [headline(outcome.document), *sizing_lines(outcome.document)]:
            stdout.print(line.replace("**", "").replace("`", ""), highlight=False)
        report = outcome.files["report"].resolve()
        stdout.print(f"run directory: {outcome.out}\nreport: [link=file://{report}]{report}[/link]")
        if outcome.found is None:
            raise GateFailed("no offered rate held every SLO")


class _Progress:
    """A spinner for each tick; each new step and each step's result printed once, as a line on stderr."""

    def __init__(self, console: Any, spinner: Any) -> None:
        self._console = console
        self._spinner = spinner
        self._phase = ""

    def __call__(self, message: str) -> None:
        phase = message.split(": ", 1)[0]
        is_result = " req/s: held" in message or " req/s: failed" in message
        if is_result or phase != self._phase:
            self._console.print(f"[dim]•[/] {message if is_result else phase}", highlight=False)
            self._phase = phase
        self._spinner.update(message)
