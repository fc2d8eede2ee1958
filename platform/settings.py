"""Service settings: one pydantic-settings model read from `ROLESCOPE_*` variables and CLI flags.

Fault knobs live in their own model with the `ROLESCOPE_FAULT_` prefix so a load
test can plant a regression in a service it starts without touching any file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

FAULT_KEYS: tuple[str, ...] = ("cpu_per_token_us", "extra_allocations", "added_latency_ms", "error_rate")


def bundled_roles_path() -> Path:
    """The example roles shipped inside the package (sherlock and friends).

    Resolved through a file because a strict editable install links each file
    individually: the real folder is where the role files actually live, which
    keeps the loader's "stay inside the folder" check meaningful.
    """
    marker = Path(str(resources.files("rolescope.examples").joinpath("sherlock.yaml")))
    return marker.resolve().parent


class FaultSettings(BaseSettings):
    """Regressions planted on purpose in the simulator, so the gate has something to catch."""

    model_config = SettingsConfigDict(env_prefix="ROLESCOPE_FAULT_", extra="forbid")

    cpu_per_token_us: float = Field(default=0.0, ge=0, le=1_000_000, description="busy CPU work per token")
    extra_allocations: int = Field(default=0, ge=0, le=10_000_000, description="small objects per request")
    added_latency_ms: float = Field(default=0.0, ge=0, le=600_000, description="delay before the first token")
    error_rate: float = Field(default=0.0, ge=0, le=1, description="share of requests that fail")

    @property
    def active(self) -> bool:
        return any(getattr(self, key) for key in FAULT_KEYS)

    def plus(self, extra: FaultSettings | None) -> FaultSettings:
        """These faults and `extra` together (one role version's own): delays, CPU work and
        allocations add up; the error rates combine as independent chances of failing."""
        if extra is None or not extra.active:
            return self
        return FaultSettings(
            cpu_per_token_us=self.cpu_per_token_us + extra.cpu_per_token_us,
            extra_allocations=self.extra_allocations + extra.extra_allocations,
            added_latency_ms=self.added_latency_ms + extra.added_latency_ms,
            error_rate=1 - (1 - self.error_rate) * (1 - extra.error_rate),
        )


class Settings(BaseSettings):
    """Everything the role service process needs; `ROLESCOPE_<FIELD>` overrides each field."""

    model_config = SettingsConfigDict(env_prefix="ROLESCOPE_", extra="ignore")

    roles_path: Path = Field(default_factory=bundled_roles_path, description="a role file or a folder")
    db_path: Path | None = Field(default=None, description="SQLite file; default ./data/<first role>.db")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    store: Literal["sqlite", "redis"] = "sqlite"
    redis_url: str = "redis://127.0.0.1:6379/0"
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "NORMAL"
    max_message_chars: int = Field(default=4000, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=256)
    concurrency_limit: int = Field(default=256, ge=0, description="in-flight chat requests; 0 = no limit")
    shutdown_timeout_s: float = Field(default=10.0, ge=0)
    # Longer than the idle timeout of the proxies that usually sit in front (60 s for ingress-nginx
    # upstreams and cloud load balancers): if the service closed an idle connection first, a
    # request the proxy sent on it at that moment would fail (a 502 at the proxy).
    keep_alive_s: int = Field(
        default=75, ge=1, le=3600, description="seconds an idle keep-alive connection stays open"
    )
    max_output_tokens: int = Field(default=1024, ge=1, description="tokens per reply, whatever the role asks")
    max_turns_per_session: int = Field(
        default=1000, ge=2, description="stored turns before a session is full"
    )
    api_keys: str | None = Field(default=None, description="comma-separated API keys; unset = open service")
    api_keys_file: Path | None = Field(default=None, description="file with one API key a line")
    tls_cert: Path | None = Field(default=None, description="PEM server certificate (chain); set = HTTPS")
    tls_key: Path | None = Field(default=None, description="PEM private key of the server certificate")
    tls_client_ca: Path | None = Field(
        default=None, description="PEM CA bundle; set = every client must present a certificate it signed"
    )
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="serve /metrics on this port instead of the API port"
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "warning"
    access_log: bool = False
    telemetry: bool = Field(
        default=True, description="metrics, /metrics and tracing; off to measure their cost"
    )
    log_format: Literal["json", "text"] = Field(default="json", description="json lines carry the trace id")
    faults: FaultSettings = Field(default_factory=FaultSettings)
    simulator_delays: bool = Field(
        default=True, description="sleep the simulator's planned delays; off, each is an event-loop yield"
    )
    capture_path: Path | None = Field(
        default=None, description="append sampled, redacted shadow traffic here"
    )
    capture_sample: float = Field(default=0.2, ge=0, le=1, description="share of sessions captured")
    capture_queue: int = Field(
        default=10_000, ge=1, description="records waiting for the writer before drops"
    )
    ws_idle_timeout_s: float = Field(
        default=300.0, gt=0, description="close a WebSocket with no frame and no turn for this long (1000)"
    )
    ws_ping_interval_s: float = Field(
        default=20.0, ge=0, description="WebSocket ping interval and pong timeout; 0 = no pings"
    )
    ws_compression: bool = Field(
        default=True,
        description="offer permessage-deflate on WebSockets (about 34 KB of zlib state per connection)",
    )
    ws_send_queue_chars: int = Field(
        default=256 * 1024, ge=1024, description="frames waiting for a slow WebSocket reader before 1013"
    )
    ws_allowed_origins: str | None = Field(
        default=None, description="comma-separated origins allowed besides the same host ('*' = any)"
    )
    mirror_pairs_path: Path | None = Field(
        default=None, description="mirrored exchanges as redacted pairs (JSONL)"
    )
    watch_roles: bool = Field(default=False, description="reload role files when they change (as on SIGHUP)")
    watch_interval_s: float = Field(default=1.0, gt=0, le=3600, description="how often --watch looks")
    measure_memory_dir: Path | None = Field(
        default=None, description="run under memray and write allocations per request here (one worker)"
    )

    def resolved_db_path(self, first_role: str) -> Path:
        return self.db_path if self.db_path is not None else Path("data") / f"{first_role}.db"
