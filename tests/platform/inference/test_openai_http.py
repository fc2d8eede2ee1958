"""The OpenAI-compatible backend against a second, real rolescope serving `/v1/chat/completions`."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from rolescope.inference.base import InferenceError, InferenceInput, InferenceTimeoutError
from rolescope.inference.openai_http import OpenAIHttpBackend
from rolescope.roles import load_roles
from rolescope.serving.launcher import ServiceProcess, launch_service
from rolescope.settings import bundled_roles_path

SLOW_ROLE = {
    "name": "slowpoke",
    "version": "1.0",
    "persona": {
        "display_name": "Slowpoke",
        "background": "A slow thinker.",
        "traits": ["slow"],
        "speaking_style": "drawling",
    },
    "inference": {"timeout_ms": 60000, "simulator": {"ttft_ms": 1000, "tokens_per_second": 100}},
}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory, fast_roles_path: Path) -> Iterator[ServiceProcess]:
    """The "model server": a rolescope with the example roles and a slow one."""
    folder = tmp_path_factory.mktemp("upstream-roles")
    shutil.copy(fast_roles_path / "sherlock.yaml", folder / "sherlock.yaml")
    (folder / "slowpoke.yaml").write_text(yaml.safe_dump(SLOW_ROLE))
    work = tmp_path_factory.mktemp("upstream")
    with launch_service(roles_path=folder, db_path=work / "u.db", log_path=work / "u.log") as process:
        yield process


def _inputs(message: str) -> InferenceInput:
    role = load_roles(bundled_roles_path())["sherlock"]
    return InferenceInput(
        role.name,
        role.version,
        role.system_prompt(),
        (),
        message,
        role.persona,
        role.response_constraints,
    )


def test_backend_infers_and_streams_from_a_real_server(upstream: ServiceProcess) -> None:
    async def run() -> None:
        backend = OpenAIHttpBackend(upstream.url)
        try:
            whole = await backend.infer("sherlock", _inputs("Who forged the will?"), 10_000)
            chunks = [
                c async for c in backend.infer_stream("sherlock", _inputs("Who forged the will?"), 10_000)
            ]
        finally:
            await backend.aclose()
        assert "forged" in whole.text or "will" in whole.text
        assert "".join(c.text for c in chunks) == whole.text
        assert sum(1 for c in chunks if c.text) >= 3
        assert chunks[-1].usage == whole.usage and whole.usage.output_tokens > 0

    asyncio.run(run())


def test_backend_timeouts_and_errors_are_raised_never_papered_over(upstream: ServiceProcess) -> None:
    async def run() -> None:
        backend = OpenAIHttpBackend(upstream.url)
        try:
            with pytest.raises(InferenceTimeoutError):
                await backend.infer("slowpoke", _inputs("Well?"), 200)
            with pytest.raises(InferenceTimeoutError):
                async for _ in backend.infer_stream("slowpoke", _inputs("Well?"), 200):
                    pass
            with pytest.raises(InferenceError):
                await backend.infer("moriarty", _inputs("hi"), 5_000)
        finally:
            await backend.aclose()
        unreachable = OpenAIHttpBackend("http://127.0.0.1:9")
        with pytest.raises(InferenceError):
            await unreachable.infer("sherlock", _inputs("hi"), 5_000)
        await unreachable.aclose()

    asyncio.run(run())


def test_a_rolescope_role_served_by_another_rolescope(
    upstream: ServiceProcess, tmp_path: Path, service_factory
) -> None:  # type: ignore[no-untyped-def]
    document = yaml.safe_load((bundled_roles_path() / "sherlock.yaml").read_text())
    document["inference"] = {
        "backend": "openai",
        "base_url": upstream.url,
        "model": "sherlock",
        "timeout_ms": 10000,
    }
    proxy_roles = tmp_path / "roles"
    proxy_roles.mkdir()
    (proxy_roles / "sherlock.yaml").write_text(yaml.safe_dump(document))
    timeout_role = dict(
        document,
        name="impatient",
        inference={"backend": "openai", "base_url": upstream.url, "model": "slowpoke", "timeout_ms": 200},
    )
    (proxy_roles / "impatient.yaml").write_text(yaml.safe_dump(timeout_role))
    proxy = service_factory(roles_path=proxy_roles)

    message = {"message": "Who stole the emerald?", "role": "sherlock"}
    direct = httpx.post(
        f"{upstream.url}/v1/chat/completions",
        timeout=30,
        json={"model": "sherlock", "messages": [{"role": "user", "content": message["message"]}]},
    )
    via_proxy = httpx.post(f"{proxy.url}/v1/chat", json=message, timeout=30)
    assert via_proxy.status_code == 200, via_proxy.text
    assert via_proxy.json()["content"] == direct.json()["choices"][0]["message"]["content"]
    assert via_proxy.json()["usage"]["output_tokens"] == direct.json()["usage"]["completion_tokens"]

    timed_out = httpx.post(f"{proxy.url}/v1/chat", json={"message": "Well?", "role": "impatient"}, timeout=30)
    assert timed_out.status_code == 504
    assert timed_out.json()["error"]["code"] == "inference_timeout"


def test_a_plain_text_persona_reaches_the_model_server_verbatim_as_the_system_message(
    tmp_path: Path, service_factory, asgi_server
) -> None:  # type: ignore[no-untyped-def]
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    received: list[dict] = []

    async def completions(request: Request) -> JSONResponse:
        received.append(await request.json())
        return JSONResponse(
            {
                "model": "teller",
                "choices": [{"message": {"content": "Once, long ago, a fox."}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 40, "completion_tokens": 6},
            }
        )

    model_server = asgi_server(
        Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    )
    document = yaml.safe_load((bundled_roles_path() / "storyteller.yaml").read_text())
    prompt = document["persona"].strip()
    document["inference"] = {"backend": "openai", "base_url": model_server.url, "model": "teller"}
    roles = tmp_path / "roles"
    roles.mkdir()
    (roles / "storyteller.yaml").write_text(yaml.safe_dump(document))
    service = service_factory(roles_path=roles)

    answer = httpx.post(f"{service.url}/v1/chat", json={"message": "A tale, please."}, timeout=30)

    assert answer.status_code == 200, answer.text
    assert answer.json()["content"] == "Once, long ago, a fox."
    assert received[0]["messages"] == [
        {"role": "system", "content": prompt},
        {"role": "user", "content": "A tale, please."},
    ]


# An upstream stream framed the way the SSE standard allows but no simple line reader expects:
# a comment, a line split across writes, CRLF split between writes, lone-CR line endings,
# one JSON chunk spread over two `data:` lines, and an event after `[DONE]` that must be ignored.
AWKWARD_STREAM = (
    b": keep-alive\r\n\r\n",
    b'data: {"choices": [{"delta": {"content": "Hel',
    b'lo"}}]}\r',
    b"\n\r\n",
    b'data: {"choices": [{"delta":\n',
    b'data: {"content": " there"}}]}\n\n',
    b'event: message\rdata: {"choices": [{"delta": {}, "finish_reason": "length"}],'
    b' "usage": {"prompt_tokens": 3, "completion_tokens": 2}}\r\r',
    b"data: [DONE]\n\n",
    b'data: {"choices": [{"delta": {"content": "after the end"}}]}\n\n',
)
ERROR_STREAM = (
    b'data: {"choices": [{"delta": {"content": "Hm"}}]}\n\n',
    b'event: error\ndata: {"message": "upstream overloaded"}\n\n',
)


def _raw_sse_app(pieces: tuple[bytes, ...]):  # type: ignore[no-untyped-def]
    async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for piece in pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            await asyncio.sleep(0.02)  # separate writes reach the client as separate reads
        await send({"type": "http.response.body", "body": b""})

    return app


def test_the_stream_is_read_as_server_sent_events_not_as_lines(asgi_server) -> None:  # type: ignore[no-untyped-def]
    server = asgi_server(_raw_sse_app(AWKWARD_STREAM), lifespan="off")

    async def run() -> list:  # type: ignore[type-arg]
        backend = OpenAIHttpBackend(server.url)
        try:
            return [c async for c in backend.infer_stream("any", _inputs("hi"), 10_000)]
        finally:
            await backend.aclose()

    chunks = asyncio.run(run())
    assert [c.text for c in chunks] == ["Hello", " there", ""]
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens == 2
    assert chunks[-1].finish_reason == "length"


def test_an_error_event_mid_stream_is_an_inference_error(asgi_server) -> None:  # type: ignore[no-untyped-def]
    server = asgi_server(_raw_sse_app(ERROR_STREAM), lifespan="off")

    async def run() -> list[str]:
        backend = OpenAIHttpBackend(server.url)
        seen: list[str] = []
        try:
            async for chunk in backend.infer_stream("any", _inputs("hi"), 10_000):
                seen.append(chunk.text)
        finally:
            await backend.aclose()
        return seen

    with pytest.raises(InferenceError, match="failed mid-stream"):
        asyncio.run(run())


def test_backend_speaks_mutual_tls_to_a_model_server_that_requires_a_client_certificate(
    pki, service_factory, fast_roles_path: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from rolescope.client_tls import ClientTls
    from rolescope.serving.wiring import build_backends
    from rolescope.settings import FaultSettings

    ca = pki.ca("model-ca")
    server = pki.issue("model-server", ca=ca, server=True)
    gateway = pki.issue("rolescope-gateway", ca=ca)
    tls = ClientTls(ca_file=ca.cert, client_cert=gateway.cert, client_key=gateway.key)
    model_server = service_factory(
        roles_path=fast_roles_path,
        extra_args=[
            *("--tls-cert", str(server.cert), "--tls-key", str(server.key)),
            *("--tls-client-ca", str(ca.cert)),
        ],
        tls=tls,
    )
    role_file = tmp_path / "remote.yaml"
    document = {
        **SLOW_ROLE,
        "name": "remote",
        "inference": {
            "backend": "openai",
            "model": "sherlock",
            "base_url": model_server.url,
            "ca_file": str(ca.cert),
            "client_cert": str(gateway.cert),
            "client_key": str(gateway.key),
        },
    }
    role_file.write_text(yaml.safe_dump(document))
    with_certificate = build_backends(load_roles(role_file), FaultSettings())["remote@1.0"]
    without_certificate = OpenAIHttpBackend(model_server.url, tls=ClientTls(ca_file=ca.cert))

    async def run() -> None:
        try:
            reply = await with_certificate.infer("sherlock", _inputs("Who forged the will?"), 10_000)
            assert reply.usage.output_tokens > 0
            with pytest.raises(InferenceError):
                await without_certificate.infer("sherlock", _inputs("Who forged the will?"), 10_000)
        finally:
            await with_certificate.aclose()
            await without_certificate.aclose()

    asyncio.run(run())


def test_role_inference_tls_settings_are_checked(tmp_path: Path) -> None:
    from rolescope.errors import ConfigError

    role_file = tmp_path / "remote.yaml"
    document = {
        **SLOW_ROLE,
        "name": "remote",
        "inference": {"backend": "openai", "base_url": "http://127.0.0.1:9", "client_cert": "a.pem"},
    }
    role_file.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError) as problem:
        load_roles(role_file)
    assert "client_cert and client_key together" in str(problem.value)
    document["inference"]["client_key"] = "a.key"  # type: ignore[index]
    role_file.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError) as problem:
        load_roles(role_file)
    assert "https:// base_url" in str(problem.value)


def test_a_fixed_output_length_is_passed_on_to_the_model_server(
    upstream: ServiceProcess, tmp_path: Path, service_factory
) -> None:  # type: ignore[no-untyped-def]
    document = yaml.safe_load((bundled_roles_path() / "sherlock.yaml").read_text())
    document["inference"] = {"backend": "openai", "base_url": upstream.url, "model": "sherlock"}
    document["response_constraints"]["max_tokens"] = 20  # lower than the lengths asked for below
    roles = tmp_path / "roles"
    roles.mkdir()
    (roles / "sherlock.yaml").write_text(yaml.safe_dump(document))
    front = service_factory(roles_path=roles)
    question = [{"role": "user", "content": "How long is this answer?"}]

    def completion_tokens(**fields: object) -> int:
        body = {"model": "sherlock", "messages": question, **fields}
        reply = httpx.post(f"{front.url}/v1/chat/completions", json=body, timeout=30)
        assert reply.status_code == 200, reply.text
        return int(reply.json()["usage"]["completion_tokens"])

    assert completion_tokens() <= 20
    assert completion_tokens(max_tokens=64, ignore_eos=True) == 64
    assert completion_tokens(max_tokens=80, min_tokens=50) >= 50
