"""A real `rolescope serve` process on 127.0.0.1 for reliability runs: start, probe, SIGTERM, kill -9.

Everything here is bounded: waits have deadlines and the process is always reaped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from rolescope.loadtests.runner import free_port, pinned
from rolescope.procstats import ProcessStats, process_stats

READY_TIMEOUT_S = 30.0
# What `rolescope serve` runs, minus the CLI: settings come from the ROLESCOPE_* variables.
_SERVE = (
    "from rolescope.serving.server import run_server; from rolescope.settings import Settings; "
    "run_server(Settings())"
)


@dataclass
class ManagedService:
    """One service process; `env` holds `ROLESCOPE_*` settings on top of the current environment."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    cpus: str | None = None  # taskset CPU list: run the service on these CPUs only

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_path(self) -> Path:
        return Path(self.env.get("ROLESCOPE_DB_PATH", str(self.workdir / "sessions.db")))

    @property
    def log_path(self) -> Path:
        return self.workdir / f"service-{self.starts}.log"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        self.starts += 1
        env = dict(os.environ)
        env.update(
            {
                "ROLESCOPE_HOST": "127.0.0.1",
                "ROLESCOPE_PORT": str(self.port),
                "ROLESCOPE_DB_PATH": str(self.db_path),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.env)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            pinned([sys.executable, "-c", _SERVE], self.cpus),
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the service was not ready within {READY_TIMEOUT_S} s: {self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stats(self) -> ProcessStats:
        return process_stats(self.pid)

    def terminate(self, timeout_s: float) -> tuple[int | None, float]:
        """SIGTERM, then wait; returns (exit code or None if it had to be killed, seconds to exit)."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            code = None
        return code, time.monotonic() - started

    def kill(self) -> None:
        """kill -9: no shutdown code runs, exactly like a crash or an OOM kill."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def logs(self) -> str:
        return "".join(
            (self.workdir / f"service-{n}.log").read_text(errors="replace")
            for n in range(1, self.starts + 1)
            if (self.workdir / f"service-{n}.log").exists()
        )


def write_bundled_roles_at_speed(folder: Path, tokens_per_second: float, ttft_ms: float) -> Path:
    """The bundled roles (so the bundled traffic replays against them) with another simulator speed.

    Fast enough, and the service's own CPU rather than the simulated inference becomes the
    bottleneck: the hard case for admission control, which then shares a saturated core.
    """
    import yaml

    from rolescope.settings import bundled_roles_path

    folder.mkdir(parents=True, exist_ok=True)
    for source in sorted(bundled_roles_path().glob("*.yaml")):
        role = yaml.safe_load(source.read_text())
        role["inference"]["simulator"] = dict(
            role["inference"]["simulator"], tokens_per_second=tokens_per_second, ttft_ms=ttft_ms
        )
        (folder / source.name).write_text(yaml.safe_dump(role, sort_keys=False))
    return folder


def write_test_roles(
    folder: Path, fast_tokens_per_second: float = 2000.0, slow_tokens_per_second: float = 20.0
) -> Path:
    """Two roles for reliability runs, derived from the bundled sherlock: `fast` (writes complete
    in milliseconds, so crashes land mid-write often) and `slow` (streams stay open for seconds,
    so a shutdown always finds some mid-reply)."""
    import yaml

    from rolescope.settings import bundled_roles_path

    base = yaml.safe_load((bundled_roles_path() / "sherlock.yaml").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    for name, tps, ttft in (("fast", fast_tokens_per_second, 1.0), ("slow", slow_tokens_per_second, 50.0)):
        role = dict(base)
        role["name"] = name
        role["inference"] = dict(base["inference"], model=f"{name}-sim")
        role["inference"]["simulator"] = dict(
            base["inference"]["simulator"], tokens_per_second=tps, ttft_ms=ttft, jitter=0.1
        )
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(role, sort_keys=False))
    return folder
