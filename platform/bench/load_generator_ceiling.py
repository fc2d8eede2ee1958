"""How many streamed tokens per second can one load-generator core time correctly? rolescope vs AIPerf.

    python -m rolescope.bench load_generator_ceiling [--quick]

A small streaming server of our own (`ceiling_server`, in its own process,
on the other cores) sends fixed-length streams with a fixed asked gap and
writes down when it actually sent every token. At increasing Poisson rates,
`rolescope load --api openai` and AIPerf 0.13.0 (the same install as
`peer_agreement`) are each run pinned with `taskset` to the same single core.
A step passes for a tool when its ITL p50 and p90 are within 1 ms of the
gaps the server really sent (see `ceiling_steps`); the highest token rate
offered at a step a tool passed is its ceiling, and the rate the server
really streamed in each tool's window is shown beside it. Only loopback is used.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
from rich.console import Console

from rolescope.bench import peer_aiperf
from rolescope.bench.ceiling_steps import Judgement, Step, ceiling, ceiling_table, judge, server_truth
from rolescope.bench.peer_compare import ToolFigures
from rolescope.bench.peer_install import (
    AIPERF,
    MINILM_TOKENIZER,
    default_cache,
    ensure_peer,
    ensure_tokenizer,
    offline_env,
)
from rolescope.bench.peer_process import ServerProcess, free_port, run_bounded, start_server
from rolescope.bench.peer_rolescope import parse_samples, rolescope_load_argv
from rolescope.bench.peer_workload import Workload, write_traffic
from rolescope.errors import EnvironmentProblem
from rolescope.rundir import SAMPLES_FILE

ITL_MS = 10.0
TTFT_MS = 5.0
TOKENS = 40
PROMPT_TOKENS = 16
STARTUP_ALLOWANCE_S = 300.0
TOOLS = ("rolescope", "aiperf")
Tool = Callable[[str, Workload, Path], ToolFigures]


def steps(quick: bool) -> tuple[Step, ...]:
    rates = (5.0, 25.0, 75.0) if quick else (5.0, 25.0, 50.0, 100.0, 150.0, 250.0)
    return tuple(Step(rate, ITL_MS, TOKENS) for rate in rates)


def cores() -> tuple[list[str], list[str]]:
    """taskset prefixes: the load generator on the last allowed core, the server on the others."""
    if shutil.which("taskset") is None:
        raise EnvironmentProblem("taskset (util-linux) is needed to pin each load generator to one core")
    allowed = sorted(os.sched_getaffinity(0))
    tool_core = allowed[-1]
    server_cores = [c for c in allowed if c != tool_core] or [tool_core]
    return ["taskset", "-c", str(tool_core)], ["taskset", "-c", ",".join(map(str, server_cores))]


def _start(server_pin: list[str], work: Path) -> ServerProcess:
    port = free_port()
    argv = [
        *server_pin, sys.executable, "-m", "rolescope.bench.ceiling_server", "--port", str(port),
        "--ttft-ms", f"{TTFT_MS:g}", "--itl-ms", f"{ITL_MS:g}", "--tokens", str(TOKENS),
    ]  # fmt: skip
    return start_server(argv, f"http://127.0.0.1:{port}", "/health", work / "server.log", {})


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])


def _rolescope(pin: Sequence[str]) -> Tool:
    def measure(url: str, workload: Workload, window: Path) -> ToolFigures:
        out = window / "rolescope"
        traffic = write_traffic(workload, workload.model, window / "traffic.jsonl")
        argv = [*pin, *rolescope_load_argv(url, workload, traffic, out)]
        log = window / "rolescope.log"
        run_bounded(argv, log, {}, workload.seconds + STARTUP_ALLOWANCE_S)
        if not (out / SAMPLES_FILE).is_file():
            raise RuntimeError(f"rolescope load wrote no {SAMPLES_FILE}:\n{_tail(log)}")
        return parse_samples((out / SAMPLES_FILE).read_text(encoding="utf-8"))

    return measure


def _aiperf(pin: Sequence[str], console: Console) -> Tool:
    cache = default_cache()
    executable = ensure_peer(AIPERF, cache, console.print)
    env = offline_env(ensure_tokenizer(MINILM_TOKENIZER, cache, console.print))

    def measure(url: str, workload: Workload, window: Path) -> ToolFigures:
        artifacts = window / "aiperf"
        argv = [
            *pin,
            *peer_aiperf.aiperf_argv(executable, url, workload, MINILM_TOKENIZER.repo_id, artifacts),
        ]
        log = window / "aiperf.log"
        code = run_bounded(argv, log, env, workload.seconds + STARTUP_ALLOWANCE_S, cwd=window)
        if code != 0:
            raise RuntimeError(f"aiperf exited with status {code}:\n{_tail(log)}")
        return peer_aiperf.read_artifacts(artifacts)

    return measure


def _measure(
    console: Console, tools: dict[str, Tool], plan: Sequence[Step], seconds: float, work: Path
) -> list[Judgement]:
    _, server_pin = cores()
    judgements: list[Judgement] = []
    with _start(server_pin, work) as server:
        for index, step in enumerate(plan):
            workload = Workload(rate=step.rate, seconds=seconds, prompt_tokens=PROMPT_TOKENS,
                                output_tokens=step.tokens, model="ceiling", seed=index)  # fmt: skip
            for name, tool in tools.items():
                window = work / f"step{index}-{name}"
                window.mkdir(parents=True)
                httpx.post(f"{server.url}/reset", timeout=10).raise_for_status()
                try:
                    figures = tool(server.url, workload, window)
                except RuntimeError as exc:
                    console.print(f"[red]{name} at {step.rate:g} req/s failed:[/] {exc}")
                    figures = ToolFigures(name, {"itl": []}, 0)
                streams = httpx.get(f"{server.url}/record", timeout=10).json()["streams"]
                verdict = judge(name, step, figures.samples_ms.get("itl", ()), figures.failures,
                                server_truth(streams))  # fmt: skip
                judgements.append(verdict)
                console.print(
                    f"{name}: {step.rate:g} req/s, {verdict.tokens_per_s:.0f} tok/s streamed, "
                    f"{verdict.timed} timed: {'ok' if verdict.passed else verdict.reason}"
                )
    return judgements


def run(quick: bool = False) -> dict[str, float]:
    console = Console(width=max(Console().width, 132))
    tool_pin, _ = cores()
    tools: dict[str, Tool] = {"rolescope": _rolescope(tool_pin), "aiperf": _aiperf(tool_pin, console)}
    plan = steps(quick)
    seconds = 8.0 if quick else 15.0
    console.print(f"load generators pinned with `{' '.join(tool_pin)}`; {len(plan)} steps × {seconds:g} s")
    with tempfile.TemporaryDirectory(prefix="rolescope-bench-ceiling-") as tmp:
        judgements = _measure(console, tools, plan, seconds, Path(tmp))
    console.print(ceiling_table(judgements, TOOLS))
    figures = {f"{tool}.ceiling_tokens_per_s": ceiling(judgements, tool) for tool in TOOLS}
    for verdict in judgements:
        prefix = f"{verdict.tool}.rate_{verdict.step.rate:g}"
        figures[f"{prefix}.passed"] = float(verdict.passed)
        figures[f"{prefix}.tokens_per_s"] = verdict.tokens_per_s
        figures.update({f"{prefix}.itl_{key}_error_ms": value for key, value in verdict.errors_ms.items()})
    return figures


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
