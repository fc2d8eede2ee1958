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
from tests.conftest import Issued

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


def _accepted(service: ServiceProcess, ca: Path, client: Issued) -> bool:
    """Whether a new connection presenting `client`'s certificate is served."""
    with _client(ca, client.cert, client.key) as fresh:
        try:
            return fresh.get(f"{service.url}/v1/roles").status_code == 200
        except httpx.TransportError:
            return False


def _wait_for_log(service: ServiceProcess, text: str, times: int = 1) -> None:
    deadline = time.monotonic() + 20
    while service.log().count(text) < times:
        assert time.monotonic() < deadline, service.log()[-3000:]
        time.sleep(0.1)


def _reload_count(client: httpx.Client, url: str, outcome: str) -> float:
    series = f'rolescope_tls_reloads_total{{outcome="{outcome}"}} '
    lines = client.get(f"{url}/metrics").text.splitlines()
    return sum(float(line.split()[-1]) for line in lines if line.startswith(series))


def _healthz_over(
    port: int, context: ssl.SSLContext, session: ssl.SSLSession | None = None
) -> tuple[bool, ssl.SSLSession | None, bool]:
    """(answered 200, the TLS session to resume later, whether this one was resumed) on a raw connection."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as tls,
        ):
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := tls.recv(4096):
                answer += chunk
            return answer.startswith(b"HTTP/1.1 200"), tls.session, tls.session_reused
    except (OSError, ssl.SSLError):
        return False, None, False


@pytest.fixture
def rotating_ca(pki, tmp_path):  # type: ignore[no-untyped-def]
    """A server certificate, a client CA file that the test overwrites, and a client of each of two CAs."""
    server_ca, old_ca, new_ca = pki.ca("server-ca"), pki.ca("old-clients-ca"), pki.ca("new-clients-ca")
    server = pki.issue("server", ca=server_ca, server=True)
    client_ca = tmp_path / "live" / "clients-ca.crt"
    client_ca.parent.mkdir()
    shutil.copy(old_ca.cert, client_ca)
    old_client, new_client = pki.issue("old-alice", ca=old_ca), pki.issue("new-alice", ca=new_ca)
    args = ["--tls-cert", str(server.cert), "--tls-key", str(server.key), "--tls-client-ca", str(client_ca)]
    return server_ca, new_ca, client_ca, old_client, new_client, args


def test_sighup_reloads_the_client_ca_keeping_open_connections_and_refusing_a_bad_file(
    rotating_ca, service_factory, fast_roles_path
) -> None:  # type: ignore[no-untyped-def]
    server_ca, new_ca, client_ca, old_client, new_client, args = rotating_ca
    tls = ClientTls(ca_file=server_ca.cert, client_cert=old_client.cert, client_key=old_client.key)
    service: ServiceProcess = service_factory(roles_path=fast_roles_path, extra_args=args, tls=tls)
    assert _accepted(service, server_ca.cert, old_client)
    assert not _accepted(service, server_ca.cert, new_client)
    # A keep-alive connection opened under the old CA, used again after each reload.
    opened_before = _client(server_ca.cert, old_client.cert, old_client.key)
    assert opened_before.get(f"{service.url}/healthz").status_code == 200
    # A TLS session the old client could resume later (TLS 1.3 sends its ticket after the handshake).
    resuming = ClientTls(ca_file=server_ca.cert, client_cert=old_client.cert, client_key=old_client.key)
    context = resuming.ssl_context()
    _ok, session, _ = _healthz_over(service.port, context)
    ok, session, resumed = _healthz_over(service.port, context, session)
    assert ok and resumed, "the service should resume sessions while the CA is unchanged"

    # A half-written bundle is refused, naming the file; the old CA keeps serving.
    client_ca.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n")
    os.kill(service.pid, signal.SIGHUP)
    _wait_for_log(service, "certificate rotation skipped")
    assert f"--tls-client-ca {client_ca}: not a PEM certificate" in service.log()
    assert _accepted(service, server_ca.cert, old_client)
    assert not _accepted(service, server_ca.cert, new_client)
    assert _reload_count(opened_before, service.url, "refused") == 1
    assert _reload_count(opened_before, service.url, "applied") == 0

    shutil.copy(new_ca.cert, client_ca)
    os.kill(service.pid, signal.SIGHUP)
    _wait_for_log(service, f"client CA reloaded from {client_ca}")
    assert _accepted(service, server_ca.cert, new_client)
    assert not _accepted(service, server_ca.cert, old_client), "a certificate only the old CA signed"
    ok, _session, _resumed = _healthz_over(service.port, context, session)
    assert not ok, "a session from before the CA change resumed without the new CA's check"
    # Still served: it is the connection opened before (a new one with that certificate is refused above).
    assert opened_before.get(f"{service.url}/healthz").status_code == 200
    assert _reload_count(opened_before, service.url, "applied") == 1
    opened_before.close()
    assert service.process.poll() is None


def test_every_worker_reloads_the_client_ca_on_sighup(rotating_ca, service_factory, fast_roles_path) -> None:  # type: ignore[no-untyped-def]
    server_ca, new_ca, client_ca, old_client, new_client, args = rotating_ca
    tls = ClientTls(ca_file=server_ca.cert, client_cert=old_client.cert, client_key=old_client.key)
    service: ServiceProcess = service_factory(
        roles_path=fast_roles_path, extra_args=[*args, "--workers", "2"], tls=tls, ready_timeout=90
    )
    # Ready means one worker answers; a worker still starting would read the bad file below at its start.
    # Each worker logs a role reload for a SIGHUP once it serves (at once if it was still starting).
    os.kill(service.pid, signal.SIGHUP)
    _wait_for_log(service, "role reload (SIGHUP", times=2)
    client_ca.write_text("not a certificate\n")
    os.kill(service.pid, signal.SIGHUP)
    _wait_for_log(service, f"--tls-client-ca {client_ca}: not a PEM certificate", times=2)
    assert all(_accepted(service, server_ca.cert, old_client) for _ in range(8))

    reloaded = f"client CA reloaded from {client_ca}"
    before = service.log().count(reloaded)
    shutil.copy(new_ca.cert, client_ca)
    os.kill(service.pid, signal.SIGHUP)
    _wait_for_log(service, reloaded, times=before + 2)
    # New connections land on either worker: every one of them must judge by the new CA.
    assert all(_accepted(service, server_ca.cert, new_client) for _ in range(12))
    assert not any(_accepted(service, server_ca.cert, old_client) for _ in range(12))
    assert service.process.poll() is None
