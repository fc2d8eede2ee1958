"""Settings of the load side, read from `ROLESCOPE_LOAD_*` environment variables.

`locustfile.py` reads them in every Locust process (local, master, worker),
so plain `locust -f` and the Helm chart configure a run the same way
`rolescope load` does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from rolescope.errors import ConfigError
from rolescope.loadtests.targets.base import TargetOptions
from rolescope.validation_messages import join_problems, problem_lines

ENV_PREFIX = "ROLESCOPE_LOAD_"
UserKind = Literal["replay", "chat", "stream"]


class LoadConfig(BaseSettings):
    """What every load process needs to replay traffic."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    traffic: Path | None = Field(default=None, description="JSONL traffic; the bundled sample if unset")
    user: UserKind = Field(default="replay", description="replay follows each record's stream flag")
    speed: float = Field(default=1.0, gt=0, le=10_000, description="divides recorded gaps")
    sessions_share: float = Field(default=1.0, gt=0, le=1, description="share of sessions replayed")
    rate: float | None = Field(default=None, gt=0, description="open model: requests per second in total")
    arrival: Literal["poisson", "constant"] = "poisson"
    processes: int = Field(default=1, ge=1, le=256, description="load processes sharing the work")
    seed: int = 0
    shape: Literal["step", "spike", "soak", "ramp"] | None = None
    users: int = Field(default=10, ge=1)
    spawn_rate: float = Field(default=10.0, gt=0)
    duration_s: float = Field(default=60.0, gt=0)
    samples: Path | None = Field(
        default=None, description="where the master or local process appends samples"
    )
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    run_tag: str = Field(default="run", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    timeout_s: float = Field(default=60.0, gt=0, description="network timeout of one request")
    target: TargetOptions = Field(default_factory=TargetOptions, description="protocol, model, headers, TLS")

    @property
    def open_model(self) -> bool:
        return self.rate is not None

    def to_env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for name, value in self.model_dump(mode="json").items():
            if value is not None:
                env[f"{ENV_PREFIX}{name.upper()}"] = (
                    json.dumps(value) if isinstance(value, dict) else str(value)
                )
        return env


def load_config_from_env() -> LoadConfig:
    try:
        return LoadConfig()
    except ValidationError as exc:
        lines = problem_lines(exc, location=lambda loc: (ENV_PREFIX + ".".join(map(str, loc)).upper(),))
        raise ConfigError(join_problems("load settings from the environment", lines)) from exc


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)")


def parse_duration(text: str) -> float:
    """Seconds in '90', '90s', '2m', '1h30m' or '500ms'."""
    cleaned = text.strip().lower()
    try:
        return float(cleaned)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise ConfigError(f"duration {text!r} is not understood; expected e.g. 60s, 2m, 1h30m or 90")
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(number) * scale[unit] for number, unit in parts)
