"""GuideLLM in the peer benchmark: its scenario file and its `benchmarks.json`.

GuideLLM 0.8.1 takes its whole configuration as a scenario (`guidellm run -c
FILE`), which is clearer than its `kind=...,key=value` options. Its backend
first checks `GET <target>/<api_routes["/health"]>`; rolescope serves
readiness at `/readyz`, so the scenario points that route there.

`benchmarks.json` holds, per benchmark, every request
(`requests.successful[*]`) with GuideLLM's own per-request figures:
`time_to_first_token_ms`, `inter_token_latency_ms` = (last token - first
token) / (output tokens - 1), and `request_latency` in seconds, all counted
from the request's actual send time; and its summary under
`metrics.<name>.successful.percentiles`.

A known fault of 0.8.1's Poisson profile: the main process signals the start
before it sets the shared arrival offset, so a worker that wakes in between
schedules from -1.0 instead of the start time and every arrival is already
due; requests then go out as fast as the workers can send them. Such runs
carry `targeted_start` values that are small relative numbers instead of
Unix times, which `lost_poisson_start` detects, so the benchmark can retry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rolescope.bench.peer_compare import Percentiles, ToolFigures
from rolescope.bench.peer_workload import Workload

OUTPUT_FILE = "benchmarks.json"
# Unix times are past this; a Poisson target below it was counted from -1.0, not the start time.
_UNIX_TIME_FLOOR = 1e9


def scenario(url: str, workload: Workload, tokenizer: str, output: Path, health_path: str) -> dict[str, Any]:
    """A `guidellm run -c` scenario: open model (Poisson at the rate) for the duration, fixed lengths."""
    return {
        "metadata": {"name": "rolescope-peer-agreement", "description": "one window of the peer benchmark"},
        "spec": {
            "backend": {
                "kind": "openai_http",
                "target": url,
                "model": workload.model,
                "request_format": "/v1/chat/completions",
                "api_routes": {"/health": health_path.lstrip("/")},
                "extras": {"body": {"ignore_eos": True}},
            },
            "profile": {"kind": "poisson", "rate": workload.rate},
            "data": [
                {
                    "kind": "synthetic_text",
                    "prompt_tokens": workload.prompt_tokens,
                    "output_tokens": workload.output_tokens,
                }
            ],
            "tokenizer": {"kind": "huggingface_auto", "model": tokenizer},
            "seed": {"kind": "static", "value": workload.seed},
            "constraints": [{"kind": "max_duration", "seconds": workload.seconds}],
            "outputs": [{"kind": "json", "path": str(output)}],
        },
    }


def guidellm_argv(executable: Path, scenario_file: Path) -> list[str]:
    return [str(executable), "run", "-c", str(scenario_file), "--disable-console-interactive"]


def _successful(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for benchmark in document.get("benchmarks", []):
        found.extend(benchmark.get("requests", {}).get("successful") or [])
    return found


def parse_benchmarks(document: Mapping[str, Any], tool: str = "guidellm") -> ToolFigures:
    """Every successful request's TTFT, ITL and latency in ms; errored ones are counted as failures."""
    ttft: list[float] = []
    itl: list[float] = []
    e2e: list[float] = []
    for request in _successful(document):
        if request.get("time_to_first_token_ms") is not None:
            ttft.append(float(request["time_to_first_token_ms"]))
        if request.get("inter_token_latency_ms") is not None:
            itl.append(float(request["inter_token_latency_ms"]))
        if request.get("request_latency") is not None:
            e2e.append(float(request["request_latency"]) * 1000)
    failures = incomplete = 0
    for benchmark in document.get("benchmarks", []):
        requests = benchmark.get("requests", {})
        failures += len(requests.get("errored") or [])
        incomplete += len(requests.get("incomplete") or [])
    # Incomplete requests are the ones still streaming when the window closed: cut, not failed.
    notes = (f"{incomplete} requests cut at the end of a window",) if incomplete else ()
    return ToolFigures(tool, {"ttft": ttft, "itl": itl, "e2e": e2e}, failures, notes)


def parse_summary(document: Mapping[str, Any]) -> dict[str, Percentiles]:
    """GuideLLM's own percentiles of the first benchmark, in ms."""
    benchmarks = document.get("benchmarks") or []
    if not benchmarks:
        return {}
    metrics = benchmarks[0].get("metrics", {})
    sources = {"ttft": ("time_to_first_token_ms", 1.0), "itl": ("inter_token_latency_ms", 1.0),
               "e2e": ("request_latency", 1000.0)}  # fmt: skip
    found: dict[str, Percentiles] = {}
    for figure, (name, scale) in sources.items():
        percentiles = metrics.get(name, {}).get("successful", {}).get("percentiles", {})
        found[figure] = {
            key: float(percentiles[key]) * scale for key in ("p50", "p90", "p99") if key in percentiles
        }
    return found


def lost_poisson_start(document: Mapping[str, Any]) -> bool:
    """True when the Poisson schedule was counted from -1.0 (see the module docstring)."""
    targets = [
        request.get("info", {}).get("timings", {}).get("targeted_start") for request in _successful(document)
    ]
    known = [t for t in targets if isinstance(t, int | float)]
    return bool(known) and min(known) < _UNIX_TIME_FLOOR


def offered_rate(document: Mapping[str, Any]) -> float:
    """Requests sent per second over the window GuideLLM measured."""
    benchmarks = document.get("benchmarks") or []
    if not benchmarks:
        return 0.0
    duration = float(benchmarks[0].get("duration") or 0.0)
    sent = sum(len(b.get("requests", {}).get(k) or []) for b in benchmarks for k in ("successful", "errored"))
    return sent / duration if duration > 0 else 0.0


def read_output(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RuntimeError(f"GuideLLM wrote no {path.name} at {path}")
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document
