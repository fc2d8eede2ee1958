"""WebSocket turns in traces: one SERVER span per turn, the chat and inference spans under it, as on HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from rolescope.serving.launcher import launch_service


def test_each_websocket_turn_is_its_own_trace_with_the_chat_span_under_a_server_span(
    tmp_path: Path, fast_role: Path, otlp_receiver: Any
) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.url,
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }

    async def two_turns(url: str) -> list[dict[str, Any]]:
        finals = []
        async with connect(url) as ws:
            for message in ("Who stole the pearl?", "And the dog?"):
                session = {"session_id": finals[-1]["session_id"]} if finals else {}
                await ws.send(json.dumps({"message": message, **session}))
                while (frame := json.loads(await asyncio.wait_for(ws.recv(), 20)))["type"] == "token":
                    pass
                assert frame["type"] == "final", frame
                finals.append(frame["response"])
        return finals

    with launch_service(roles_path=fast_role, db_path=tmp_path / "s.db", env=env) as service:
        finals = asyncio.run(two_turns(service.url.replace("http://", "ws://") + "/v1/ws"))
        spans = otlp_receiver.wait_for(lambda s: sum(x.name.startswith("WS ") for x in s) >= 2)

    assert finals[0]["trace_id"] != finals[1]["trace_id"]
    for final in finals:
        by_name = {s.name: s for s in spans if s.trace_id == final["trace_id"]}
        server, chat, inference = by_name["WS /v1/ws"], by_name["chat"], by_name["inference"]
        assert server.parent_span_id == "" and server.attributes["http.response.status_code"] == 200
        assert chat.parent_span_id == server.span_id and inference.parent_span_id == chat.span_id
        assert by_name["session_store.save_exchange"].parent_span_id == chat.span_id
        assert inference.attributes["gen_ai.usage.output_tokens"] > 0
