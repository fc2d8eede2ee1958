"""Simulator faults of one role version (`inference.faults`), on top of the process-wide ones."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from rolescope.errors import ConfigError
from rolescope.roles import load_roles
from rolescope.serving.wiring import build_backends
from rolescope.settings import FaultSettings, bundled_roles_path


def _two_versions(folder: Path, faults: object) -> Path:
    folder.mkdir()
    base = yaml.safe_load((bundled_roles_path() / "sherlock.yaml").read_text(encoding="utf-8"))
    (folder / "sherlock-1.2.yaml").write_text(yaml.safe_dump(base), encoding="utf-8")
    canary = {**base, "version": "1.3", "inference": {**base["inference"], "faults": faults}}
    (folder / "sherlock-1.3.yaml").write_text(yaml.safe_dump(canary), encoding="utf-8")
    return folder


def test_faults_add_to_the_process_wide_ones() -> None:
    process = FaultSettings(added_latency_ms=10, error_rate=0.5, cpu_per_token_us=1)
    combined = process.plus(FaultSettings(added_latency_ms=90, error_rate=0.5, extra_allocations=3))
    assert combined.added_latency_ms == 100 and combined.cpu_per_token_us == 1
    assert combined.extra_allocations == 3 and combined.error_rate == pytest.approx(0.75)
    assert process.plus(FaultSettings()) is process


def test_only_the_version_with_faults_fails(tmp_path: Path) -> None:
    roles = load_roles(_two_versions(tmp_path / "roles", {"error_rate": 1.0}))
    backends = build_backends(roles, FaultSettings())
    assert backends["sherlock@1.3"] is not backends["sherlock@1.2"]

    from rolescope.inference.base import InferenceError
    from rolescope.service.chat import ChatService
    from rolescope.storage.sqlite_store import SqliteSessionStore

    service = ChatService(roles, backends, SqliteSessionStore(tmp_path / "chat.db"))
    stable, canary = roles.resolve("sherlock@1.2"), roles.resolve("sherlock@1.3")

    async def answer(role_reference: str) -> str:
        role = roles.resolve(role_reference)
        inputs = service.inference_input(role, (), "Who took the pearl?")
        result = await service.backend(role).infer(role.inference.model, inputs, 60_000)
        return result.text

    assert asyncio.run(answer(stable.reference))
    with pytest.raises(InferenceError, match="planted fault"):
        asyncio.run(answer(canary.reference))


def test_a_bad_fault_names_the_file_and_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_roles(_two_versions(tmp_path / "roles", {"error_rate": 2, "slowness": 1}))
    message = str(caught.value)
    assert "sherlock-1.3.yaml" in message
    assert "inference.faults.error_rate" in message and "inference.faults.slowness" in message
