"""rolescope's own load generator in the peer benchmark: `rolescope load --api openai` as a child process.

The command line is built in one place, `rolescope_load_argv`, so that it can
follow the `load` command's options as they are; `openai_api_available` asks
`load --help` whether the OpenAI-compatible target protocol is there at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rolescope.bench.peer_compare import ToolFigures
from rolescope.bench.peer_workload import Workload, write_traffic
from rolescope.rundir import SAMPLES_FILE

NOT_AVAILABLE = "rolescope: not measured (load --api openai not available)"


def openai_api_available() -> bool:
    result = subprocess.run(
        [sys.executable, "-m", "rolescope", "load", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_plain_help_env(),
    )
    return result.returncode == 0 and "--api" in result.stdout


def _plain_help_env() -> dict[str, str]:
    import os

    # A wide, uncoloured help screen, so option names are never split by wrapping or styling.
    return {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def rolescope_load_argv(url: str, workload: Workload, traffic: Path, out: Path) -> list[str]:
    """`rolescope load` against an OpenAI-compatible endpoint, open model, the workload's lengths."""
    return [
        sys.executable, "-m", "rolescope", "load",
        "--api", "openai",
        "--host", url,
        "--model", workload.model,
        "--traffic", str(traffic),
        "--user", "stream",
        "--rate", f"{workload.rate:g}",
        "--arrival", "poisson",
        "--duration", f"{workload.seconds:g}s",
        "--max-tokens", str(workload.output_tokens),
        "--ignore-eos",
        "--seed", str(workload.seed),
        "--out", str(out),
    ]  # fmt: skip


def run_rolescope(url: str, workload: Workload, work: Path, name: str) -> Path:
    """Run one window and return its run directory; raises RuntimeError with the output tail on failure."""
    out = work / name
    traffic = write_traffic(workload, workload.model, work / f"{name}-traffic.jsonl")
    argv = rolescope_load_argv(url, workload, traffic, out)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=workload.seconds + 180, check=False)
    if not (out / SAMPLES_FILE).is_file():
        tail = (result.stdout + result.stderr)[-2500:]
        command = " ".join(argv[1:])
        raise RuntimeError(f"`{command}` wrote no {SAMPLES_FILE} (exit {result.returncode}):\n{tail}")
    return out


def parse_samples(text: str, tool: str = "rolescope") -> ToolFigures:
    """rolescope's `samples.jsonl`, one request a line in seconds; failed requests are only counted."""
    ttft: list[float] = []
    itl: list[float] = []
    e2e: list[float] = []
    failures = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        sample = json.loads(line)
        if not sample.get("ok"):
            failures += 1
            continue
        e2e.append(float(sample["e2e_s"]) * 1000)
        if sample.get("ttft_s") is not None:
            ttft.append(float(sample["ttft_s"]) * 1000)
        if sample.get("tpot_s") is not None:
            itl.append(float(sample["tpot_s"]) * 1000)
    return ToolFigures(tool, {"ttft": ttft, "itl": itl, "e2e": e2e}, failures)


def read_run(run_dir: Path) -> ToolFigures:
    return parse_samples((run_dir / SAMPLES_FILE).read_text(encoding="utf-8"))
