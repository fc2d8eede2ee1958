"""Fixtures shared by every test folder: free loopback ports and a real Prometheus.

Everything here binds 127.0.0.1 only and cleans up after itself.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import yaml

from rolescope.event_stream import EventStreamDecoder


def metric_value(url: str, series: str) -> float:
    """The value of one exact series (`name{labels}`) on a service's /metrics; 0 when it is absent."""
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def find_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def free_port() -> int:
    return find_free_port()


@dataclass
class PrometheusServer:
    url: str
    process: subprocess.Popen[bytes]
    config_path: Path

    def query(self, promql: str) -> list[dict]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def wait_for(self, promql: str, timeout: float = 30.0) -> list[dict]:
        """Poll until the query returns at least one series."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if result or time.monotonic() > deadline:
                return result
            time.sleep(0.5)

    def reload(self) -> None:
        httpx.post(f"{self.url}/-/reload", timeout=10).raise_for_status()


PrometheusFactory = Callable[..., PrometheusServer]


@pytest.fixture
def prometheus_server(tmp_path: Path) -> Iterator[PrometheusFactory]:
    """Start a real Prometheus (Debian package) on 127.0.0.1 scraping the given targets.

    Usage: `prom = prometheus_server(targets=["127.0.0.1:8080"], rule_files=[path])`.
    """
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: run `make system-deps` (Debian package prometheus)")
    started: list[subprocess.Popen[bytes]] = []

    def start(
        targets: list[str],
        rule_files: list[Path] | None = None,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        metrics_path: str = "/metrics",
    ) -> PrometheusServer:
        port = find_free_port()
        workdir = tmp_path / f"prometheus-{port}"
        workdir.mkdir()
        config = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
            "rule_files": [str(p) for p in (rule_files or [])],
            "scrape_configs": [
                {
                    "job_name": "rolescope",
                    "metrics_path": metrics_path,
                    "static_configs": [{"targets": targets}],
                }
            ],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        log = (workdir / "prometheus.log").open("wb")
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
                "--enable-feature=exemplar-storage",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"prometheus exited: {(workdir / 'prometheus.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    return PrometheusServer(url=url, process=process, config_path=config_path)
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail("prometheus did not become ready within 30 s")

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class ThreadedServer:
    url: str
    server: object
    thread: object


@pytest.fixture
def asgi_server() -> Iterator[Callable[..., ThreadedServer]]:
    """Serve an ASGI app with a real uvicorn on a free 127.0.0.1 port, in a thread of this process.

    Usage: `srv = asgi_server(app)`; then `httpx.get(f"{srv.url}/path")`. Stopped at teardown.
    """
    import threading

    import uvicorn

    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: object, **config: object) -> ThreadedServer:
        port = find_free_port()
        options: dict[str, object] = {"log_level": "warning", "lifespan": "auto"}
        options.update(config)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))  # type: ignore[arg-type]
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("uvicorn did not start within 10 s")
            time.sleep(0.01)
        running.append((server, thread))
        return ThreadedServer(url=f"http://127.0.0.1:{port}", server=server, thread=thread)

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=10)


if TYPE_CHECKING:
    from rolescope.serving.launcher import ServiceProcess

ServiceFactory = Callable[..., "ServiceProcess"]


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[ServiceFactory]:
    """Start `rolescope serve` child processes (real uvicorn, --port 0) and stop them at teardown.

    Usage: `svc = service_factory(roles_path=..., extra_args=["--fault", "error_rate=1"])`; every
    keyword goes to `rolescope.serving.launcher.launch_service`; `db_path` defaults to a fresh file.
    """
    from rolescope.serving.launcher import launch_service

    started: list[ServiceProcess] = []

    def start(**options: object) -> ServiceProcess:
        options.setdefault("db_path", tmp_path / f"service-{len(started)}.db")
        options.setdefault("log_path", tmp_path / f"service-{len(started)}.log")
        process = launch_service(**options)  # type: ignore[arg-type]
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def service(service_factory: ServiceFactory) -> ServiceProcess:
    """One role service on the bundled example roles, with a fresh SQLite file."""
    return service_factory()


@dataclass
class LoadSampleRecord:
    name: str
    ok: bool
    e2e_s: float
    ttft_s: float | None


@dataclass
class BackgroundLoad:
    """Plain-httpx chat traffic from a few threads, counted by the load generator's exporter."""

    exporter_target: str  # host:port where the load-side metrics (LOAD_*) are served
    sent: list[LoadSampleRecord]

    @property
    def failures(self) -> int:
        return sum(1 for s in self.sent if not s.ok)


BackgroundLoadFactory = Callable[..., BackgroundLoad]


def _one_request(client: httpx.Client, url: str, role: str, stream: bool) -> LoadSampleRecord:
    started = time.perf_counter()
    body = {"message": "Tell me about the case.", "role": role, "stream": stream}
    ttft: float | None = None
    try:
        if stream:
            decoder = EventStreamDecoder()
            with client.stream("POST", f"{url}/v1/chat", json=body) as response:
                for chunk in response.iter_bytes():
                    if ttft is None and decoder.feed(chunk):
                        ttft = time.perf_counter() - started
                ok = response.status_code == 200
        else:
            ok = client.post(f"{url}/v1/chat", json=body).status_code == 200
    except httpx.HTTPError:
        ok = False
    return LoadSampleRecord("stream" if stream else "chat", ok, time.perf_counter() - started, ttft)


@pytest.fixture
def background_load() -> Iterator[BackgroundLoadFactory]:
    """Drive a short, bounded load at a service until the test ends (at most `max_seconds`).

    Usage: `load = background_load(service.url, stream=False)`; Prometheus can scrape
    `load.exporter_target` for the load generator's series.
    """
    import threading

    from prometheus_client import CollectorRegistry, start_http_server

    from rolescope.exporters.locust_exporter import LoadMetrics

    stop = threading.Event()
    threads: list[threading.Thread] = []
    servers: list[object] = []

    def start(
        url: str, workers: int = 3, stream: bool | None = None, max_seconds: float = 120.0
    ) -> BackgroundLoad:
        metrics = LoadMetrics(CollectorRegistry())
        server, _ = start_http_server(0, addr="127.0.0.1", registry=metrics.registry)
        servers.append(server)
        roles = [r["name"] for r in httpx.get(f"{url}/v1/roles", timeout=10).json()["roles"]]
        load = BackgroundLoad(f"127.0.0.1:{server.server_port}", [])
        active = [0]
        metrics.track_users(lambda: float(active[0]))
        deadline = time.monotonic() + max_seconds

        def run(worker: int) -> None:
            active[0] += 1
            with httpx.Client(timeout=30) as client:
                count = worker
                while not stop.is_set() and time.monotonic() < deadline:
                    streaming = (count % 2 == 0) if stream is None else stream
                    sample = _one_request(client, url, roles[count % len(roles)], streaming)
                    load.sent.append(sample)
                    metrics.observe(sample)
                    count += 1
            active[0] -= 1

        for worker in range(workers):
            thread = threading.Thread(target=run, args=(worker,), daemon=True)
            thread.start()
            threads.append(thread)
        return load

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=35)
    for server in servers:
        server.shutdown()  # type: ignore[attr-defined]
        server.server_close()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def fast_roles_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled example roles with a quick simulator (20 ms to first token, 400 tokens/s), for API tests
    that need real answers but not realistic pacing. Personas, constraints and versions are unchanged."""
    from rolescope.settings import bundled_roles_path

    folder = tmp_path_factory.mktemp("fast-roles")
    for source in sorted(bundled_roles_path().glob("*.yaml")):
        document = yaml.safe_load(source.read_text())
        timing = document.setdefault("inference", {}).setdefault("simulator", {})
        timing.update(ttft_ms=20, tokens_per_second=400)
        (folder / source.name).write_text(yaml.safe_dump(document))
    return folder


@dataclass(frozen=True)
class Issued:
    """A PEM certificate and its key on disk, and the certificate's serial number."""

    cert: Path
    key: Path
    serial: int


class Pki:
    """Certificate authorities and certificates made in the test (ECDSA P-256), written under `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def _write(self, name: str, cert: object, key: object) -> Issued:
        from cryptography.hazmat.primitives import serialization

        cert_path, key_path = self.folder / f"{name}.crt", self.folder / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))  # type: ignore[attr-defined]
        key_path.write_bytes(
            key.private_bytes(  # type: ignore[attr-defined]
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return Issued(cert_path, key_path, cert.serial_number)  # type: ignore[attr-defined]

    def ca(self, name: str) -> Issued:
        return self.issue(name, ca=None, is_ca=True)

    def issue(
        self,
        name: str,
        *,
        ca: Issued | None,
        is_ca: bool = False,
        server: bool = False,
        spiffe: str | None = None,
        expired: bool = False,
    ) -> Issued:
        import datetime as dt
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        start, end = (now - dt.timedelta(days=10), now - dt.timedelta(days=1)) if expired else (
            now - dt.timedelta(minutes=5), now + dt.timedelta(days=1)
        )
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        if ca is None:
            issuer_name, signing_key = subject, key
        else:
            issuer_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
            issuer_name = issuer_cert.subject
            signing_key = serialization.load_pem_private_key(ca.key.read_bytes(), None)  # type: ignore[assignment]
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        )
        if is_ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        else:
            names: list[x509.GeneralName] = []
            if server:
                names += [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            if spiffe:
                names.append(x509.UniformResourceIdentifier(spiffe))
            if names:
                builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
            usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        assert ca is not None or is_ca
        cert = builder.sign(signing_key, hashes.SHA256())  # type: ignore[arg-type]
        return self._write(name, cert, key)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """Make CAs and certificates for TLS tests: `ca = pki.ca("ca"); pki.issue("alice", ca=ca)`."""
    return Pki(tmp_path / "pki")


@pytest.fixture
def mtls(pki, service_factory, fast_roles_path):  # type: ignore[no-untyped-def]
    """A role service on HTTPS that asks every client for a certificate of its CA: (pki, ca, server
    certificate, alice's client certificate, the service)."""
    from rolescope.client_tls import ClientTls

    ca = pki.ca("clients-and-servers-ca")
    server = pki.issue("server", ca=ca, server=True)
    alice = pki.issue("alice", ca=ca)
    tls = ClientTls(ca_file=ca.cert, client_cert=alice.cert, client_key=alice.key)
    serve_args = [
        "--tls-cert",
        str(server.cert),
        "--tls-key",
        str(server.key),
        "--tls-client-ca",
        str(ca.cert),
    ]
    service = service_factory(roles_path=fast_roles_path, extra_args=serve_args, tls=tls)
    return pki, ca, server, alice, service
