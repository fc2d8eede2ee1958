"""`ws_compression`: whether the service offers permessage-deflate on a real WebSocket upgrade."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from tests.conftest import ServiceFactory

pytestmark = pytest.mark.timeout(120)


async def _negotiated_and_answered(url: str) -> tuple[str | None, str]:
    async with connect(url.replace("http://", "ws://") + "/v1/ws") as connection:
        assert connection.response is not None
        extensions = connection.response.headers.get("Sec-WebSocket-Extensions")
        await connection.send(json.dumps({"message": "Hello", "role": "sherlock"}))
        while True:
            frame = json.loads(await connection.recv())
            if frame["type"] in ("final", "error"):
                return extensions, frame["type"]


@pytest.mark.parametrize(("setting", "offered"), [(None, True), ("false", False)])
def test_websocket_compression_is_offered_unless_turned_off(
    service_factory: ServiceFactory, fast_roles_path, setting: str | None, offered: bool
) -> None:  # type: ignore[no-untyped-def]
    env = {} if setting is None else {"ROLESCOPE_WS_COMPRESSION": setting}
    service = service_factory(roles_path=fast_roles_path, env=env)
    extensions, last = asyncio.run(_negotiated_and_answered(service.url))
    assert last == "final"
    assert (extensions is not None and "permessage-deflate" in extensions) is offered, extensions
