"""HTTPS for the role service: start-up checks of the PEM files, the server's SSL context, rotation.

`check_tls_files` reads the files once before anything listens and reports every
problem at once, each naming its file (missing, not PEM, expired, key of another
certificate), so a bad secret fails the start instead of every handshake.

uvicorn builds the context through `tls_context.server_context_factory` (in every
worker process), which remembers it. A SIGHUP (see `rolescope.serving.lifespan`)
calls `reload_tls_files`: the certificate, key and client CA bundle are checked
as at start-up and, when all pass, built into a new context that every new
handshake is moved onto (`tls_context`). New handshakes get the new certificate
and are verified against the new CA bundle only; connections already open keep
theirs, nothing is dropped. Files that fail the checks change nothing: the
problems are logged, each naming its file, and counted.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from rolescope.errors import ConfigError
from rolescope.exporters import names
from rolescope.serving.tls_context import live_contexts, server_context_factory
from rolescope.settings import Settings

log = logging.getLogger("rolescope.tls")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert: Path
    key: Path
    client_ca: Path | None = None


def tls_files(settings: Settings) -> TlsFiles | None:
    """The configured files, None when TLS is off; ConfigError when only one of cert and key is set."""
    if settings.tls_cert is None and settings.tls_key is None:
        if settings.tls_client_ca is not None:
            raise ConfigError(
                f"--tls-client-ca {settings.tls_client_ca}: client certificates need HTTPS; "
                "also pass --tls-cert and --tls-key"
            )
        return None
    if settings.tls_cert is None or settings.tls_key is None:
        given, missing = (
            ("--tls-cert", "--tls-key") if settings.tls_key is None else ("--tls-key", "--tls-cert")
        )
        raise ConfigError(f"{given} needs {missing} too (ROLESCOPE_TLS_CERT and ROLESCOPE_TLS_KEY)")
    return TlsFiles(settings.tls_cert, settings.tls_key, settings.tls_client_ca)


def _read(path: Path, flag: str, problems: list[str]) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        problems.append(f"{flag} {path}: no such file")
    except OSError as exc:
        problems.append(f"{flag} {path}: cannot be read ({exc.strerror})")
    return None


def _certificates(data: bytes, path: Path, flag: str, problems: list[str]) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        problems.append(
            f"{flag} {path}: not a PEM certificate (expected '-----BEGIN CERTIFICATE-----' blocks)"
        )
        return []


def _check_validity(
    cert: x509.Certificate, path: Path, flag: str, now: datetime, problems: list[str]
) -> None:
    if cert.not_valid_after_utc <= now:
        problems.append(
            f"{flag} {path}: the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        )
    elif cert.not_valid_before_utc > now:
        problems.append(
            f"{flag} {path}: the certificate is not valid before "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )


def _public_der(key: Any) -> bytes:
    return bytes(
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def check_tls_files(files: TlsFiles, now: datetime | None = None) -> list[str]:
    """Every problem with the files, each naming its file; empty when HTTPS can start."""
    now = now or datetime.now(UTC)
    problems: list[str] = []
    leaf: x509.Certificate | None = None
    cert_data = _read(files.cert, "--tls-cert", problems)
    if cert_data is not None:
        chain = _certificates(cert_data, files.cert, "--tls-cert", problems)
        if chain:
            leaf = chain[0]
            _check_validity(leaf, files.cert, "--tls-cert", now, problems)
    key_data = _read(files.key, "--tls-key", problems)
    if key_data is not None:
        try:
            key = serialization.load_pem_private_key(key_data, password=None)
        except (ValueError, TypeError):
            problems.append(
                f"--tls-key {files.key}: not an unencrypted PEM private key "
                "(expected '-----BEGIN PRIVATE KEY-----' or '-----BEGIN EC/RSA PRIVATE KEY-----')"
            )
        else:
            if leaf is not None and _public_der(key.public_key()) != _public_der(leaf.public_key()):
                problems.append(
                    f"--tls-key {files.key}: this key does not belong to the certificate in {files.cert}"
                )
    if files.client_ca is not None:
        ca_data = _read(files.client_ca, "--tls-client-ca", problems)
        if ca_data is not None:
            cas = _certificates(ca_data, files.client_ca, "--tls-client-ca", problems)
            valid = [ca for ca in cas if ca.not_valid_before_utc <= now < ca.not_valid_after_utc]
            if cas and not valid:
                problems.append(f"--tls-client-ca {files.client_ca}: every CA certificate in it has expired")
    return problems


def require_valid_tls(settings: Settings) -> TlsFiles | None:
    """The files when TLS is on and they are usable; ConfigError listing every problem otherwise."""
    files = tls_files(settings)
    if files is not None and (problems := check_tls_files(files)):
        raise ConfigError("HTTPS cannot start:\n  - " + "\n  - ".join(problems))
    return files


def uvicorn_tls_options(files: TlsFiles) -> dict[str, Any]:
    """`uvicorn.Config` keyword arguments: the files, client verification, our context factory."""
    return {
        "ssl_certfile": str(files.cert),
        "ssl_keyfile": str(files.key),
        "ssl_ca_certs": str(files.client_ca) if files.client_ca is not None else None,
        # CERT_REQUIRED: a client without a certificate chaining to the CA fails the handshake itself.
        "ssl_cert_reqs": ssl.CERT_REQUIRED if files.client_ca is not None else ssl.CERT_NONE,
        "ssl_context_factory": server_context_factory,
    }


def _ignore(outcome: str) -> None:
    pass


def reload_tls_files(count: Callable[[str], None] = _ignore) -> int:
    """Load the certificate, key and client CA files again for every live server context; the number reloaded.

    All or nothing per context: files that fail the start-up checks (or that OpenSSL cannot load) are
    not taken, the current certificate and client CA keep serving, and the problems are logged, each
    naming its file: a half-written secret must not take HTTPS down. `count` gets `names.RELOAD_APPLIED`
    or `names.RELOAD_REFUSED` once per context.
    """
    reloaded = 0
    for live in live_contexts():
        files = TlsFiles(live.cert, live.key, live.client_ca)
        problems = check_tls_files(files)
        if not problems:
            try:
                live.rebuild()
            except (OSError, ssl.SSLError) as exc:
                problems = [f"{_files_named(files)}: cannot be loaded ({exc})"]
        if problems:
            count(names.RELOAD_REFUSED)
            log.error(
                "certificate rotation skipped, the current certificate and client CA stay: %s",
                "; ".join(problems),
            )
            continue
        count(names.RELOAD_APPLIED)
        reloaded += 1
        log.warning("server certificate reloaded from %s", files.cert)
        if files.client_ca is not None:
            log.warning("client CA reloaded from %s: new handshakes are checked against it", files.client_ca)
    return reloaded


def _files_named(files: TlsFiles) -> str:
    named = f"--tls-cert {files.cert} / --tls-key {files.key}"
    return named if files.client_ca is None else f"{named} / --tls-client-ca {files.client_ca}"
