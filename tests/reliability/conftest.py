"""Fixtures for reliability tests: a real service process with fast and slow test roles."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rolescope.reliability.process import ManagedService, write_test_roles

ServiceFactory = Callable[..., ManagedService]


@pytest.fixture
def reliability_service(tmp_path: Path) -> Iterator[ServiceFactory]:
    """Start `rolescope serve` (a real process on 127.0.0.1) with roles `fast` and `slow`.

    Usage: `service = reliability_service(ROLESCOPE_API_KEYS="...")`; extra keyword arguments
    become environment variables. Every process is stopped at teardown.
    """
    started: list[ManagedService] = []

    def start(**env: str) -> ManagedService:
        workdir = tmp_path / f"service-{len(started)}"
        roles = write_test_roles(workdir / "roles")
        settings = {"ROLESCOPE_ROLES_PATH": str(roles), "ROLESCOPE_LOG_LEVEL": "info"}
        settings.update(env)
        service = ManagedService(workdir, settings)
        started.append(service)
        service.start()
        return service

    yield start
    for service in started:
        if service.process is not None and service.process.poll() is None:
            service.terminate(15)
