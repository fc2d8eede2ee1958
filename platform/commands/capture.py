"""`rolescope capture`: a capturing reverse proxy in front of any role service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def capture(
        listen: Annotated[
            str, typer.Option("--listen", help="HOST:PORT to serve clients on (port 0 picks a free one)")
        ],
        upstream: Annotated[str, typer.Option("--upstream", help="the role service's base URL")],
        out: Annotated[Path, typer.Option("--out", "-o", help="traffic JSONL to append records to")],
        sample: Annotated[
            float, typer.Option("--sample", min=0.0, max=1.0, help="share of sessions captured, 0-1")
        ] = 1.0,
        template: Annotated[
            Path | None,
            typer.Option(
                "--template", help="template YAML for a JSON/SSE API that is neither rolescope nor OpenAI"
            ),
        ] = None,
        key_file: Annotated[
            Path | None,
            typer.Option(
                "--key-file",
                help="pseudonym key (default: $ROLESCOPE_CAPTURE_KEY_FILE or $ROLESCOPE_CAPTURE_KEY)",
            ),
        ] = None,
        connect_timeout: Annotated[
            float, typer.Option("--connect-timeout", min=0.01, help="seconds to connect upstream, else 504")
        ] = 5.0,
        read_timeout: Annotated[
            float, typer.Option("--read-timeout", min=0.01, help="seconds of upstream silence before 504")
        ] = 300.0,
        insecure: Annotated[
            bool, typer.Option("--insecure", help="Do not verify an https:// upstream's TLS certificate.")
        ] = False,
        ca: Annotated[
            Path | None, typer.Option("--ca", help="Verify the https:// upstream with this CA bundle (PEM).")
        ] = None,
        client_cert: Annotated[
            Path | None,
            typer.Option("--client-cert", help="Present this PEM certificate upstream; needs --client-key."),
        ] = None,
        client_key: Annotated[
            Path | None, typer.Option("--client-key", help="The PEM private key of --client-cert.")
        ] = None,
        progress_every: Annotated[
            int,
            typer.Option("--progress-every", min=0, help="print counts every N chat exchanges (0: at exit)"),
        ] = 100,
    ) -> None:
        """Relay every request to --upstream untouched and unbuffered, and capture chat exchanges as traffic.

        Chat requests of rolescope's API (POST/GET /v1/chat), OpenAI's
        (POST /v1/chat/completions, streamed or not) and a --template's route
        are read as they pass: each becomes one traffic record (the same format
        as `rolescope serve --capture` and `traffic import`), redacted before it
        is written, with the upstream's status, latency and output tokens.
        Sessions are sampled whole by a keyed hash. Every other path is relayed
        and not read. The proxy answers by itself only 502 (upstream
        unreachable) or 504 (no answer in time); SIGINT or SIGTERM lets replies
        under way finish, then flushes the file.

        Examples:

          rolescope capture --listen 127.0.0.1:8081 --upstream http://127.0.0.1:8080 --out shadow.jsonl

          rolescope capture --listen 0.0.0.0:9000 --upstream http://vllm:8000 --out chat.jsonl --sample 0.1

          rolescope capture --listen :8081 --upstream http://chat.internal --template chat.yaml -o t.jsonl

          rolescope capture --listen :8443 --upstream https://chat.internal --ca ca.pem -o t.jsonl
        """
        import sys

        from rolescope.capture.proxy_server import ProxyOptions, parse_listen, serve
        from rolescope.client_tls import ClientTls
        from rolescope.errors import ConfigError

        host, port = parse_listen(listen)
        if insecure and ca is not None:
            raise ConfigError("--insecure turns verification off; --ca gives a CA to verify with: choose one")
        tls = ClientTls(ca, client_cert, client_key, insecure)

        def say(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

        serve(
            ProxyOptions(
                host=host,
                port=port,
                upstream=upstream,
                out=out,
                sample=sample,
                template=template,
                key_file=key_file,
                connect_timeout_s=connect_timeout,
                read_timeout_s=read_timeout,
                progress_every=progress_every,
                tls=tls if tls.configured else None,
            ),
            say,
        )
