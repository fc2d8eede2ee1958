"""`rolescope capacity` and `tune` against running targets: another protocol, and mutual TLS.

The targets are real `rolescope serve` child processes: their OpenAI-compatible
`/v1/chat/completions` is the OpenAI-style server, and with `--tls-client-ca`
they refuse any client without a certificate from the test's own CA.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from rolescope.capacity.outputs import CAPACITY_FILE
from rolescope.exporters import names
from rolescope.rundir import SAMPLES_FILE, read_samples

pytestmark = pytest.mark.timeout(300)
# One probe step and no more: a short, cheap search that still runs every part of a step.
ONE_STEP = ("--start-rate", "6", "--time-budget", "20s", "--max-step", "6", "--precision", "0.9")


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rolescope", *command],
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )


def _chat_routes(metrics: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            route = sample.labels.get("route", "")
            if sample.name == names.HTTP_REQUESTS_TOTAL and route.startswith("/v1/chat"):
                counts[route] = counts.get(route, 0.0) + sample.value
    return counts


def test_capacity_speaks_the_openai_protocol_to_a_running_target(
    tmp_path: Path, service_factory, fast_roles_path: Path
) -> None:  # type: ignore[no-untyped-def]
    service = service_factory(roles_path=fast_roles_path)
    before = _chat_routes(httpx.get(f"{service.url}/metrics").text).get("/v1/chat/completions", 0.0)
    out = tmp_path / "run"
    done = _run(
        [
            "capacity",
            *("--target", service.url, "--api", "openai", "--roles-dir", str(fast_roles_path)),
            *("--user", "stream", "--out", str(out), *ONE_STEP),
        ]
    )
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    settings = json.loads((out / "load-1" / "settings.json").read_text())
    assert settings["options"]["target"]["api"] == "openai"
    samples = read_samples(out / "load-1" / SAMPLES_FILE)
    assert samples and all(s.ok for s in samples), [s.error for s in samples if not s.ok][:5]
    assert all(s.ttft_s is not None for s in samples)
    after = _chat_routes(httpx.get(f"{service.url}/metrics").text).get("/v1/chat/completions", 0.0)
    # Every sample reached the OpenAI route (the probe and the check add a few more).
    assert after - before >= len(samples)
    document = json.loads((out / CAPACITY_FILE).read_text())
    assert document["steps"][0]["server"]["requests"] > 0


@pytest.fixture
def mtls_service(mtls):  # type: ignore[no-untyped-def]
    _pki, ca, _server, alice, service = mtls
    return service, ("--ca", str(ca.cert), "--client-cert", str(alice.cert), "--client-key", str(alice.key))


def test_capacity_presents_the_client_certificate_to_every_part_of_a_step(
    tmp_path: Path, mtls_service
) -> None:  # type: ignore[no-untyped-def]
    service, tls_args = mtls_service
    out = tmp_path / "run"
    done = _run(
        ["capacity", "--target", service.url, *tls_args, "--user", "chat", "--out", str(out), *ONE_STEP]
    )
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    samples = read_samples(out / "load-1" / SAMPLES_FILE)
    assert samples and all(s.ok for s in samples), [s.error for s in samples if not s.ok][:5]
    # The service's /metrics sits behind the same handshake: server figures mean the scrapes got through.
    step = json.loads((out / CAPACITY_FILE).read_text())["steps"][0]
    assert step["server"] is not None and step["server"]["requests"] > 0

    refused = _run(["capacity", "--target", service.url, "--ca", tls_args[1], "--out", str(tmp_path / "no")])
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    assert "Traceback" not in refused.stdout + refused.stderr
    assert not (tmp_path / "no" / "load-1").exists()


def test_tune_presents_the_client_certificate(tmp_path: Path, mtls_service) -> None:  # type: ignore[no-untyped-def]
    service, tls_args = mtls_service
    out = tmp_path / "tune"
    done = _run(
        [
            "tune",
            *("--target", service.url, *tls_args, "--runs", "1", "--duration", "3"),
            *("--no-profile", "--no-memory", "--out", str(out)),
        ]
    )
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    samples = read_samples(out / "load-1" / SAMPLES_FILE)
    assert samples and all(s.ok for s in samples), [s.error for s in samples if not s.ok][:5]


def test_the_target_options_read_the_same_in_load_tune_and_capacity() -> None:
    from typer.main import get_command

    from rolescope.cli import app

    cli = get_command(app)
    shared = ("--api", "--template", "--model", "--header", "--api-key-env", "--max-tokens", "--ignore-eos")
    shared += ("--history-turns", "--roles-dir", "--request-timeout", "--insecure", "--ca", "--client-cert")
    shared += ("--client-key",)
    helps: dict[str, dict[str, str | None]] = {}
    for name in ("load", "tune", "capacity"):
        command = cli.commands[name]  # type: ignore[attr-defined]
        helps[name] = {opt: p.help for p in command.params for opt in p.opts if opt in shared}
        assert set(helps[name]) == set(shared), name
    assert helps["load"] == helps["tune"] == helps["capacity"]
