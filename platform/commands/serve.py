"""`rolescope serve`: start the role service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rolescope.errors import ConfigError


def parse_faults(pairs: list[str]) -> dict[str, str]:
    from rolescope.settings import FAULT_KEYS

    faults: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lower().replace("-", "_")
        if not sep or key not in FAULT_KEYS:
            raise ConfigError(f"--fault {pair!r}: expected KEY=VALUE with KEY one of {', '.join(FAULT_KEYS)}")
        faults[key] = value.strip()
    return faults


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        config: Annotated[
            Path | None,
            typer.Option(
                "--config", "-c", help="a role file or a folder of them (default: the bundled examples)"
            ),
        ] = None,
        host: Annotated[str | None, typer.Option(help="address to bind (default 127.0.0.1)")] = None,
        port: Annotated[int | None, typer.Option(help="port (default 8080; 0 picks a free one)")] = None,
        db: Annotated[Path | None, typer.Option(help="SQLite file (default ./data/<first role>.db)")] = None,
        workers: Annotated[int | None, typer.Option(help="uvicorn worker processes (default 1)")] = None,
        store: Annotated[str | None, typer.Option(help="session memory: sqlite or redis")] = None,
        fault: Annotated[
            list[str] | None,
            typer.Option(
                "--fault",
                help="plant a regression: KEY=VALUE with KEY cpu_per_token_us, extra_allocations, "
                "added_latency_ms or error_rate (repeatable)",
            ),
        ] = None,
        log_level: Annotated[str | None, typer.Option(help="critical, error, warning, info or debug")] = None,
        access_log: Annotated[bool, typer.Option(help="log every request")] = False,
        capture: Annotated[
            Path | None,
            typer.Option(
                "--capture",
                help="append sampled, redacted shadow traffic (JSONL) to this file; the pseudonym "
                "key comes from $ROLESCOPE_CAPTURE_KEY or $ROLESCOPE_CAPTURE_KEY_FILE",
            ),
        ] = None,
        capture_sample: Annotated[
            float | None,
            typer.Option("--capture-sample", help="share of sessions captured, 0-1 (default 0.2)"),
        ] = None,
        metrics_port: Annotated[
            int | None, typer.Option(help="serve /metrics on this port only (not on the API port)")
        ] = None,
        api_keys_file: Annotated[
            Path | None,
            typer.Option(help="require an API key from this file (one a line); also ROLESCOPE_API_KEYS"),
        ] = None,
        tls_cert: Annotated[
            Path | None,
            typer.Option(
                "--tls-cert", help="serve HTTPS with this PEM certificate (chain); also ROLESCOPE_TLS_CERT"
            ),
        ] = None,
        tls_key: Annotated[
            Path | None, typer.Option("--tls-key", help="the PEM private key of --tls-cert")
        ] = None,
        tls_client_ca: Annotated[
            Path | None,
            typer.Option(
                "--tls-client-ca",
                help="require a client certificate signed by this PEM CA; its subject CN or SPIFFE "
                "URI becomes the session owner",
            ),
        ] = None,
        mirror_pairs: Annotated[
            Path | None,
            typer.Option(
                "--mirror-pairs",
                help="write mirrored exchanges (roles with a `mirror:` section) as redacted pairs (JSONL) "
                "for `rolescope diff`",
            ),
        ] = None,
        watch: Annotated[
            bool,
            typer.Option(
                "--watch",
                help="reload role files when they change, as on SIGHUP (validated first; a bad one is "
                "refused and the loaded roles keep serving)",
            ),
        ] = False,
        measure_memory: Annotated[
            Path | None,
            typer.Option(
                "--measure-memory",
                help="run under memray and write allocations/bytes per request to DIR/memory.json on "
                "shutdown or SIGUSR1 (one worker)",
            ),
        ] = None,
    ) -> None:
        """Start the role service: chat (JSON or SSE), sessions, OpenAI-compatible completions.

        Every option also reads from a ROLESCOPE_* variable (ROLESCOPE_PORT, ROLESCOPE_DB_PATH,
        ROLESCOPE_FAULT_ERROR_RATE, ...); options given here win.

        Examples:

          rolescope serve

          rolescope serve --config examples/sherlock.yaml --port 8080

          rolescope serve --fault cpu_per_token_us=200 --fault error_rate=0.05

          rolescope serve --capture shadow.jsonl --capture-sample 0.2

          rolescope serve --config roles/ --watch   # or: kill -HUP <pid> after editing roles/

          rolescope serve --api-keys-file keys.txt --metrics-port 9464

          rolescope serve --tls-cert tls.crt --tls-key tls.key --tls-client-ca ca.crt  # kill -HUP: rotate

          rolescope serve --measure-memory runs/live-memory   # then: kill -USR1 <pid> for a window

          curl -N 'http://127.0.0.1:8080/v1/chat?role=sherlock&message=Who%20did%20it%3F'
        """
        from pydantic import ValidationError

        from rolescope.serving.server import run_server
        from rolescope.settings import FaultSettings, Settings
        from rolescope.validation_messages import describe_validation_error

        given = {
            "roles_path": config,
            "host": host,
            "port": port,
            "db_path": db,
            "workers": workers,
            "store": store,
            "log_level": log_level,
            "capture_path": capture,
            "capture_sample": capture_sample,
            "metrics_port": metrics_port,
            "api_keys_file": api_keys_file,
            "measure_memory_dir": measure_memory,
            "tls_cert": tls_cert,
            "tls_key": tls_key,
            "tls_client_ca": tls_client_ca,
            "mirror_pairs_path": mirror_pairs,
        }
        overrides: dict[str, object] = {k: v for k, v in given.items() if v is not None}
        if access_log:
            overrides["access_log"] = True
        if watch:
            overrides["watch_roles"] = True
        try:
            if fault:
                overrides["faults"] = FaultSettings(**parse_faults(fault))  # type: ignore[arg-type]
            settings = Settings(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise ConfigError(describe_validation_error("serve options", exc)) from exc
        if settings.workers > 1 and settings.measure_memory_dir is not None:
            raise ConfigError(
                f"--measure-memory measures one process: pass --workers 1, not {settings.workers}"
            )
        if settings.workers > 1 and settings.telemetry:
            from rolescope.exporters.exposition import default_multiprocess_dir, prepare_multiprocess_dir

            # Workers share one metrics directory so /metrics gives totals; emptied so no stale counts.
            prepare_multiprocess_dir(default_multiprocess_dir())
        run_server(settings)
