"""The composition root: one typed components object, parts wired through constructors, one lifespan."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from rolescope.exporters import names
from rolescope.service.observer import CompositeObserver
from rolescope.serving.app import create_app, running
from rolescope.serving.components import ServiceComponents, components_of
from rolescope.settings import Settings
from rolescope.storage.base import StoreError


def _settings(tmp_path: Path, roles: Path, **overrides: object) -> Settings:
    return Settings(roles_path=roles, db_path=tmp_path / "s.db", log_format="text", **overrides)


async def _chat_through(app: object, messages: int) -> list[int]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://composition.test") as client:
        statuses = []
        for index in range(messages):
            body = {"message": f"Where is the ledger, part {index}?", "role": "grimble"}
            statuses.append((await client.post("/v1/chat", json=body)).status_code)
        statuses.append((await client.get("/readyz")).status_code)
        return statuses


def test_the_chat_service_reports_to_the_metrics_it_was_built_with(
    tmp_path: Path, fast_roles_path: Path
) -> None:
    app = create_app(_settings(tmp_path, fast_roles_path))
    components = components_of(app)
    assert isinstance(components, ServiceComponents)
    assert components.metrics is not None
    # One observer, given through the constructor (the mirror and the metrics, composed once), and the
    # store calls timed with that same observer.
    observer = components.chat_service.observer
    assert isinstance(observer, CompositeObserver)
    assert observer.observers == (components.mirror, components.metrics)
    assert components.chat_service.store.inner is components.store

    async def scenario() -> tuple[list[int], str]:
        async with running(app):
            statuses = await _chat_through(app, 2)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://composition.test") as client:
                return statuses, (await client.get("/metrics")).text

    statuses, exposition = asyncio.run(scenario())
    assert statuses == [200, 200, 200]
    ttft = [line for line in exposition.splitlines() if line.startswith("gen_ai_server_time_to_first_token")]
    assert any('_count{' in line and line.endswith(" 2.0") for line in ttft), ttft


def test_without_telemetry_there_are_no_metrics_and_nothing_observes(
    tmp_path: Path, fast_roles_path: Path
) -> None:
    app = create_app(_settings(tmp_path, fast_roles_path, telemetry=False))
    components = components_of(app)
    assert components.telemetry is None and components.metrics is None
    assert asyncio.run(_run(app, 1)) == [200, 200]


async def _run(app: object, messages: int) -> list[int]:
    async with running(app):  # type: ignore[arg-type]
        return await _chat_through(app, messages)


def test_the_lifespan_writes_captured_traffic_before_it_ends(tmp_path: Path, fast_roles_path: Path) -> None:
    capture = tmp_path / "capture" / "traffic.jsonl"
    app = create_app(_settings(tmp_path, fast_roles_path, capture_path=capture, capture_sample=1.0))
    assert asyncio.run(_run(app, 3)) == [200, 200, 200, 200]
    # Capture started with the lifespan and was flushed and closed when it ended.
    records = [json.loads(line) for line in capture.read_text().splitlines()]
    assert [r["role"] for r in records] == ["grimble"] * 3


def test_capture_drops_are_counted_on_the_service_metrics_from_the_first_request(
    tmp_path: Path, fast_roles_path: Path
) -> None:
    unwritable = tmp_path / "a-directory"
    unwritable.mkdir()  # opening a directory for appending fails: every record is dropped and counted
    app = create_app(_settings(tmp_path, fast_roles_path, capture_path=unwritable, capture_sample=1.0))
    metrics = components_of(app).metrics
    assert metrics is not None
    asyncio.run(_run(app, 3))
    dropped = metrics.registry.get_sample_value(
        names.TELEMETRY_DROPPED_TOTAL,
        {"signal": names.SIGNAL_CAPTURE, "reason": names.DROP_REASON_EXPORT_FAILED},
    )
    assert dropped == 3


def test_each_app_owns_its_drain_signal(tmp_path: Path, fast_roles_path: Path) -> None:
    first = components_of(create_app(_settings(tmp_path, fast_roles_path, shutdown_timeout_s=4.0)))
    second = components_of(create_app(_settings(tmp_path, fast_roles_path, shutdown_timeout_s=4.0)))
    assert first.drain is not second.drain
    assert (first.drain.grace_s, first.drain.backstop_s) == (2.0, pytest.approx(3.2))
    first.drain.begin()
    assert first.drain.draining and not second.drain.draining


def test_a_store_that_cannot_open_stops_the_lifespan_and_unwinds_what_started(
    tmp_path: Path, fast_roles_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings = Settings(roles_path=fast_roles_path, db_path=blocker / "s.db", log_format="text")
    capture = tmp_path / "capture.jsonl"
    app = create_app(settings.model_copy(update={"capture_path": capture, "capture_sample": 1.0}))

    async def scenario() -> None:
        async with running(app):
            pass

    with pytest.raises(StoreError, match="cannot open SQLite session store"):
        asyncio.run(scenario())
    capture_observer = components_of(app).capture
    assert capture_observer is not None and not capture.exists()  # never started
