"""How a rolescope client talks TLS to a server: which CA to trust and which certificate to present.

One value for every client of the project (the load users, the preflight probe,
the launcher's readiness check, the OpenAI-compatible inference backend), so
each builds the same `ssl.SSLContext` from the same three files.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from rolescope.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ClientTls:
    """`ca_file`: trust this CA bundle instead of the system's; `client_cert`/`client_key`: present them."""

    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    insecure: bool = False

    @property
    def configured(self) -> bool:
        return self.ca_file is not None or self.client_cert is not None or self.insecure

    def problems(self, where: str = "") -> list[str]:
        """What is wrong with the files, each naming its option; empty when a context can be built."""
        prefix = f"{where}: " if where else ""
        found: list[str] = []
        if (self.client_cert is None) != (self.client_key is None):
            found.append(
                f"{prefix}--client-cert and --client-key go together (one was given without the other)"
            )
        for option, path in (
            ("--ca", self.ca_file),
            ("--client-cert", self.client_cert),
            ("--client-key", self.client_key),
        ):
            if path is not None and not path.is_file():
                found.append(f"{prefix}{option} {path}: no such file")
        return found

    def ssl_context(self) -> ssl.SSLContext:
        """A client context: the CA (or the system's), the client certificate, no verification if insecure."""
        if problems := self.problems():
            raise ConfigError("; ".join(problems))
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file is not None else None)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.client_cert is not None and self.client_key is not None:
            try:
                context.load_cert_chain(str(self.client_cert), str(self.client_key))
            except (ssl.SSLError, OSError) as exc:
                raise ConfigError(
                    f"--client-cert {self.client_cert} / --client-key {self.client_key}: cannot be loaded "
                    f"(PEM certificate and its unencrypted key expected): {exc}"
                ) from exc
        return context
