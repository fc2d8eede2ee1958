"""GuideLLM's own mock OpenAI server, whose timing is known: the truth the peer benchmark measures against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rolescope.bench.peer_process import ServerProcess, free_port, start_server


@dataclass(frozen=True, slots=True)
class MockTiming:
    """Every stream: the first token after `ttft_ms`, then one every `itl_ms`, `output_tokens` in all."""

    ttft_ms: float = 150.0
    itl_ms: float = 20.0
    output_tokens: int = 40
    model: str = "mock-persona"


def mock_server_argv(executable: Path, port: int, timing: MockTiming) -> list[str]:
    """`guidellm mock-server` on loopback with every standard deviation zero (fixed timing)."""
    return [
        str(executable), "mock-server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
        "--model", timing.model,
        "--ttft-ms", f"{timing.ttft_ms:g}",
        "--ttft-ms-std", "0",
        "--itl-ms", f"{timing.itl_ms:g}",
        "--itl-ms-std", "0",
        "--output-tokens", str(timing.output_tokens),
        "--output-tokens-std", "0",
    ]  # fmt: skip


def start_mock_server(
    executable: Path, timing: MockTiming, log_path: Path, env: dict[str, str]
) -> ServerProcess:
    port = free_port()
    return start_server(
        mock_server_argv(executable, port, timing), f"http://127.0.0.1:{port}", "/health", log_path, env
    )
