"""API-key authentication: constant-time matching, owner identities, open probe paths."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from rolescope.errors import ConfigError
from rolescope.service.auth import ApiKeyMiddleware, ApiKeys, owner_from_scope, owner_id_for

KEY_A = "key-a-0123456789abcdef"
KEY_B = "key-b-0123456789abcdef"


async def echo_owner(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        message = await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        del message
        return
    body = json.dumps({"owner": owner_from_scope(scope), "path": scope["path"]}).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def test_identify_returns_the_owner_of_the_matching_key_and_none_otherwise() -> None:
    keys = ApiKeys.from_keys([KEY_A, KEY_B])
    assert keys.identify(KEY_A) == owner_id_for(KEY_A)
    assert keys.identify(KEY_B) == owner_id_for(KEY_B)
    assert keys.identify(KEY_A + "x") is None
    assert keys.identify("") is None
    assert owner_id_for(KEY_A) != owner_id_for(KEY_B)


def test_owner_identity_never_contains_the_key() -> None:
    owner = owner_id_for(KEY_A)
    assert KEY_A not in owner
    assert "0123456789abcdef" not in owner


def test_keys_are_read_from_the_setting_and_the_file_together(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# team keys\n{KEY_B}\n\n")
    keys = ApiKeys.load(f" {KEY_A} ,", keys_file)
    assert keys.enabled
    assert keys.identify(KEY_A) is not None
    assert keys.identify(KEY_B) is not None
    assert not ApiKeys.load(None, None).enabled


def test_short_keys_and_missing_files_are_refused_with_a_clear_sentence(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 16"):
        ApiKeys.load("short", None)
    with pytest.raises(ConfigError, match="cannot read the API keys file"):
        ApiKeys.load(None, tmp_path / "absent")


def test_middleware_requires_a_valid_key_except_on_probe_paths(asgi_server) -> None:  # type: ignore[no-untyped-def]
    srv = asgi_server(ApiKeyMiddleware(echo_owner, ApiKeys.from_keys([KEY_A, KEY_B])))
    with httpx.Client(base_url=srv.url, timeout=5) as client:
        missing = client.get("/v1/roles")
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "unauthorized"
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = client.get("/v1/roles", headers={"Authorization": "Bearer wrong-key-123456789"})
        assert wrong.status_code == 401
        bearer = client.get("/v1/roles", headers={"Authorization": f"Bearer {KEY_A}"})
        assert bearer.json()["owner"] == owner_id_for(KEY_A)
        header = client.get("/v1/roles", headers={"X-API-Key": KEY_B})
        assert header.json()["owner"] == owner_id_for(KEY_B)
        for path in ("/healthz", "/readyz", "/metrics"):
            assert client.get(path).status_code == 200


def test_middleware_is_transparent_when_no_keys_are_configured(asgi_server) -> None:  # type: ignore[no-untyped-def]
    srv = asgi_server(ApiKeyMiddleware(echo_owner, ApiKeys.from_keys([])))
    response = httpx.get(f"{srv.url}/v1/roles", timeout=5)
    assert response.status_code == 200
    assert response.json()["owner"] is None
