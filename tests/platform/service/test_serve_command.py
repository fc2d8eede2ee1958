"""`rolescope serve` configuration: the banner text, settings from the environment, and planted faults."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from rolescope.commands.serve import parse_faults
from rolescope.errors import ConfigError
from rolescope.event_stream import decode_all
from rolescope.serving.launcher import launch_service
from rolescope.serving.server import _banner_before_listen, settings_as_env
from rolescope.settings import FaultSettings, Settings, bundled_roles_path


def test_banner_for_a_single_role_file_with_the_default_database() -> None:
    lines: list[str] = []
    _banner_before_listen(Settings(roles_path=bundled_roles_path() / "sherlock.yaml"), lines.append)
    assert lines == ["✅ Loaded role: sherlock (v1.2)", "✅ Memory backend: SQLite (./data/sherlock.db)"]


def test_faults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLESCOPE_FAULT_CPU_PER_TOKEN_US", "150")
    monkeypatch.setenv("ROLESCOPE_FAULT_ERROR_RATE", "0.25")
    monkeypatch.setenv("ROLESCOPE_PORT", "9123")
    settings = Settings()
    assert settings.faults == FaultSettings(cpu_per_token_us=150, error_rate=0.25)
    assert settings.port == 9123
    env = settings_as_env(settings)
    assert env["ROLESCOPE_FAULT_ERROR_RATE"] == "0.25" and env["ROLESCOPE_PORT"] == "9123"


def test_fault_flags_are_parsed_and_checked() -> None:
    assert parse_faults(["error_rate=0.5", "extra-allocations=10"]) == {
        "error_rate": "0.5",
        "extra_allocations": "10",
    }
    with pytest.raises(ConfigError, match="KEY one of cpu_per_token_us"):
        parse_faults(["melt_cpu=1"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_faults(["error_rate"])


def test_a_planted_error_rate_fails_cleanly_everywhere(tmp_path: Path, fast_roles_path: Path) -> None:
    with launch_service(
        roles_path=fast_roles_path,
        db_path=tmp_path / "f.db",
        log_path=tmp_path / "f.log",
        extra_args=["--fault", "error_rate=1"],
    ) as service:
        plain = httpx.post(
            f"{service.url}/v1/chat", json={"message": "Any ale?", "role": "grimble"}, timeout=30
        )
        assert plain.status_code == 500
        assert plain.json() == {
            "error": {"code": "inference_failed", "message": "role 'grimble' failed to answer"}
        }
        with httpx.stream(
            "GET", f"{service.url}/v1/chat", params={"role": "grimble", "message": "Any ale?"}, timeout=30
        ) as response:
            body = response.read().decode()
        events = decode_all(body.encode())
        assert "token" in {e.event for e in events}  # the planted fault strikes halfway through the reply
        assert events[-1].event == "error"
        assert json.loads(events[-1].data)["error"]["code"] == "inference_failed"
        assert "done" not in {e.event for e in events}
        log = service.log()
    assert "⚠️  Planted faults: error_rate=1.0" in log
    assert "Traceback" not in plain.text and "Traceback" not in body
