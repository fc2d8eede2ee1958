"""Mutual TLS on a real `rolescope serve`: start-up checks, handshake refusals, principals, rotation."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from rolescope.client_tls import ClientTls
from rolescope.serving.launcher import ServiceProcess

pytestmark = pytest.mark.timeout(120)


def _serve_args(server, ca) -> list[str]:  # type: ignore[no-untyped-def]
    return ["--tls-cert", str(server.cert), "--tls-key", str(server.key), "--tls-client-ca", str(ca.cert)]


def _client(ca: Path, cert: Path | None = None, key: Path | None = None) -> httpx.Client:
    return httpx.Client(
        verify=ClientTls(ca_file=ca, client_cert=cert, client_key=key).ssl_context(), timeout=10
    )


def _server_serial(port: int, context: ssl.SSLContext) -> int:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return int(x509.load_der_x509_certificate(der).serial_number)


def _refused(client: httpx.Client, url: str) -> None:
    # In TLS 1.3 the server judges the client certificate after the client thinks the handshake is done,
    # so the refusal can arrive as a failed handshake or as the connection closed before any answer.
    with pytest.raises(httpx.TransportError):
        client.get(f"{url}/v1/roles")


def test_clients_without_a_certificate_from_the_ca_are_refused_at_the_handshake(mtls) -> None:  # type: ignore[no-untyped-def]
    pki, ca, _server, alice, service = mtls
    stranger_ca = pki.ca("stranger-ca")
    stranger = pki.issue("mallory", ca=stranger_ca)
    expired = pki.issue("expired-alice", ca=ca, expired=True)
    assert service.url.startswith("https://")
    for client in (
        _client(ca.cert),
        _client(ca.cert, stranger.cert, stranger.key),
        _client(ca.cert, expired.cert, expired.key),
    ):
        with client:
            _refused(client, service.url)
    with _client(ca.cert, alice.cert, alice.key) as client:
        assert client.get(f"{service.url}/v1/roles").status_code == 200
    # Plain HTTP on the TLS port gets no answer at all.
    with pytest.raises(httpx.TransportError):
        httpx.get(service.url.replace("https://", "http://") + "/healthz", timeout=5)


def test_the_certificate_principal_owns_sessions(mtls) -> None:  # type: ignore[no-untyped-def]
    pki, ca, _server, alice, service = mtls
    bob = pki.issue("bob", ca=ca, spiffe="spiffe://example.org/ns/chat/sa/bob")
    with _client(ca.cert, alice.cert, alice.key) as as_alice, _client(ca.cert, bob.cert, bob.key) as as_bob:
        reply = as_alice.post(f"{service.url}/v1/chat", json={"message": "Who did it?"})
        assert reply.status_code == 200, reply.text
        session_id = reply.json()["session_id"]
        assert as_alice.get(f"{service.url}/v1/sessions/{session_id}").status_code == 200
        assert as_bob.get(f"{service.url}/v1/sessions/{session_id}").status_code == 404
        # Continuing someone else's session is refused the same way.
        stolen = as_bob.post(f"{service.url}/v1/chat", json={"message": "Me too", "session_id": session_id})
        assert stolen.status_code == 404, stolen.text
        mine = as_bob.post(f"{service.url}/v1/chat", json={"message": "Hello"})
        assert as_bob.get(f"{service.url}/v1/sessions/{mine.json()['session_id']}").status_code == 200
        assert as_alice.get(f"{service.url}/v1/sessions/{mine.json()['session_id']}").status_code == 404


def test_sighup_rotates_the_server_certificate_without_dropping_an_open_stream(
    pki, service_factory, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    ca = pki.ca("rotation-ca")
    first = pki.issue("server-1", ca=ca, server=True)
    alice = pki.issue("alice", ca=ca)
    live = tmp_path / "live"
    live.mkdir()
    cert, key = live / "tls.crt", live / "tls.key"
    shutil.copy(first.cert, cert)
    shutil.copy(first.key, key)
    tls = ClientTls(ca_file=ca.cert, client_cert=alice.cert, client_key=alice.key)
    service: ServiceProcess = service_factory(
        extra_args=["--tls-cert", str(cert), "--tls-key", str(key), "--tls-client-ca", str(ca.cert)], tls=tls
    )
    context = tls.ssl_context()
    assert _server_serial(service.port, context) == first.serial

    events: list[str] = []
    stream_error: list[BaseException] = []
    started = threading.Event()

    def stream() -> None:
        # The bundled roles answer at 40 tokens/s: several seconds of stream on one connection.
        try:
            with (
                httpx.Client(verify=context, timeout=60) as client,
                client.stream(
                    "POST",
                    f"{service.url}/v1/chat",
                    json={"message": "Tell me the whole story, slowly", "stream": True},
                ) as response,
            ):
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        events.append(line.split(":", 1)[1].strip())
                        started.set()
        except BaseException as exc:
            stream_error.append(exc)
            started.set()

    reader = threading.Thread(target=stream)
    reader.start()
    assert started.wait(20)
    tokens_before = len(events)

    second = pki.issue("server-2", ca=ca, server=True)
    # A half-written secret (the new certificate, the old key) is refused; the old certificate stays.
    shutil.copy(second.cert, cert)
    os.kill(service.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "certificate rotation skipped" not in service.log():
        assert time.monotonic() < deadline, service.log()[-2000:]
        time.sleep(0.1)
    assert "this key does not belong to the certificate" in service.log()
    assert _server_serial(service.port, context) == first.serial
    shutil.copy(second.key, key)
    os.kill(service.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while _server_serial(service.port, context) != second.serial:
        assert time.monotonic() < deadline, "new handshakes still get the old certificate"
        time.sleep(0.1)
    assert reader.is_alive(), "the stream ended before the rotation: make it longer"
    reader.join(60)
    assert not stream_error, stream_error
    assert len(events) > tokens_before
    assert events[-1] == "done", events[-5:]
    assert service.process.poll() is None
    assert "server certificate reloaded" in service.log()


def _serve_expecting_failure(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rolescope", "serve", "--host", "127.0.0.1", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_bad_tls_files_stop_the_start_naming_each_file(pki, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ca = pki.ca("ca")
    expired = pki.issue("expired-server", ca=ca, server=True, expired=True)
    other = pki.issue("other-server", ca=ca, server=True)
    not_pem = tmp_path / "ca.der"
    not_pem.write_bytes(b"\x30\x82\x01\x0a not a certificate")
    done = _serve_expecting_failure(
        ["--tls-cert", str(expired.cert), "--tls-key", str(other.key), "--tls-client-ca", str(not_pem)]
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert f"--tls-cert {expired.cert}: the certificate expired on" in output
    assert f"--tls-key {other.key}: this key does not belong to the certificate in {expired.cert}" in output
    assert f"--tls-client-ca {not_pem}: not a PEM certificate" in output
    assert "Traceback" not in output

    missing = tmp_path / "nowhere.crt"
    done = _serve_expecting_failure(["--tls-cert", str(missing), "--tls-key", str(other.cert)])
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert f"--tls-cert {missing}: no such file" in output
    assert f"--tls-key {other.cert}: not an unencrypted PEM private key" in output


def test_rolescope_load_speaks_mutual_tls(mtls, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rolescope.rundir import SAMPLES_FILE, read_samples

    _pki, ca, _server, alice, service = mtls
    out = tmp_path / "run"
    command = [
        *(sys.executable, "-m", "rolescope", "load", "-H", service.url, "-t", "4s", "--users", "4"),
        *("--ca", str(ca.cert), "--client-cert", str(alice.cert), "--client-key", str(alice.key)),
        *("--out", str(out)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    samples = read_samples(out / SAMPLES_FILE)
    assert samples and all(s.ok for s in samples), [s.error for s in samples if not s.ok][:5]
    # The same load without a client certificate is stopped by the check before any load.
    refused = subprocess.run(
        [*command[:12], "--out", str(tmp_path / "refused")],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert refused.returncode != 0
    assert "Traceback" not in refused.stdout + refused.stderr
    assert not (tmp_path / "refused" / SAMPLES_FILE).exists()


def test_worker_processes_serve_mutual_tls(pki, service_factory, fast_roles_path) -> None:  # type: ignore[no-untyped-def]
    # Each worker gets the context factory and the protocol classes through uvicorn's pickled config.
    ca = pki.ca("workers-ca")
    server = pki.issue("server", ca=ca, server=True)
    alice = pki.issue("alice", ca=ca)
    tls = ClientTls(ca_file=ca.cert, client_cert=alice.cert, client_key=alice.key)
    service = service_factory(
        roles_path=fast_roles_path,
        extra_args=[*_serve_args(server, ca), "--workers", "2"],
        tls=tls,
        ready_timeout=90,
    )
    with _client(ca.cert, alice.cert, alice.key) as client:
        reply = client.post(f"{service.url}/v1/chat", json={"message": "Hello"})
        assert reply.status_code == 200, reply.text
        assert client.get(f"{service.url}/v1/sessions/{reply.json()['session_id']}").status_code == 200
    with _client(ca.cert) as stranger:
        _refused(stranger, service.url)
