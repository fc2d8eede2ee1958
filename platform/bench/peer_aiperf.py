"""AIPerf in the peer benchmark: its command line and its output files.

AIPerf 0.13 writes, in its artifact directory, `profile_export.jsonl` (one
request a line: `metrics.<tag>.value` in ms, an `error` object when the
request failed) and `profile_export_aiperf.json` (its own summary: per metric
`unit`, `avg`, `p50`, `p90`, `p99`, ...). Its metric definitions are the
reference here: `time_to_first_token` from request start to the first
non-empty content chunk, `inter_token_latency` = (request latency - TTFT) /
(output sequence length - 1), `request_latency` from request start to the
last chunk. With `--use-server-token-count` the output length is the
server's `usage.completion_tokens` rather than its own tokenizer's count.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rolescope.bench.peer_compare import Percentiles, ToolFigures
from rolescope.bench.peer_workload import Workload

RECORDS_FILE = "profile_export.jsonl"
SUMMARY_FILE = "profile_export_aiperf.json"
# AIPerf's metric tag for each figure of the comparison.
METRIC_TAGS: Mapping[str, str] = {
    "ttft": "time_to_first_token",
    "itl": "inter_token_latency",
    "e2e": "request_latency",
}


def aiperf_argv(
    executable: Path, url: str, workload: Workload, tokenizer: str, artifact_dir: Path
) -> list[str]:
    """`aiperf profile`, open model (Poisson arrivals at the rate), streamed chat, fixed lengths."""
    return [
        str(executable), "profile",
        "--model", workload.model,
        "--url", url,
        "--endpoint-type", "chat",
        "--streaming",
        "--tokenizer", tokenizer,
        "--request-rate", f"{workload.rate:g}",
        "--arrival-pattern", "poisson",
        "--benchmark-duration", f"{workload.seconds:g}",
        "--isl", str(workload.prompt_tokens),
        "--osl", str(workload.output_tokens),
        "--extra-inputs", "ignore_eos:true",
        "--use-server-token-count",
        "--random-seed", str(workload.seed),
        "--no-server-metrics",
        "--no-gpu-telemetry",
        "--ui-type", "none",
        "--artifact-dir", str(artifact_dir),
    ]  # fmt: skip


def _value_ms(metrics: Mapping[str, Any], tag: str) -> float | None:
    entry = metrics.get(tag)
    if not isinstance(entry, dict) or not isinstance(entry.get("value"), int | float):
        return None
    scale = {"ms": 1.0, "ns": 1e-6, "us": 1e-3, "s": 1000.0}.get(str(entry.get("unit", "ms")), 1.0)
    return float(entry["value"]) * scale


def parse_records(text: str, tool: str = "aiperf") -> ToolFigures:
    """`profile_export.jsonl`: every successful request's TTFT, ITL and latency in ms."""
    samples: dict[str, list[float]] = {figure: [] for figure in METRIC_TAGS}
    failures = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        if record.get("error"):
            failures += 1
            continue
        metrics = record.get("metrics", {})
        for figure, tag in METRIC_TAGS.items():
            value = _value_ms(metrics, tag)
            if value is not None:
                samples[figure].append(value)
    return ToolFigures(tool, samples, failures)


def parse_summary(document: Mapping[str, Any]) -> dict[str, Percentiles]:
    """AIPerf's own percentiles from `profile_export_aiperf.json`, in ms."""
    found: dict[str, Percentiles] = {}
    for figure, tag in METRIC_TAGS.items():
        entry = document.get(tag)
        if not isinstance(entry, dict):
            continue
        if entry.get("unit", "ms") != "ms":
            raise ValueError(f"{SUMMARY_FILE}: {tag} is in {entry.get('unit')!r}, expected 'ms'")
        found[figure] = {key: float(entry[key]) for key in ("p50", "p90", "p99") if key in entry}
    return found


def read_artifacts(artifact_dir: Path) -> ToolFigures:
    records = artifact_dir / RECORDS_FILE
    if not records.is_file():
        raise RuntimeError(f"AIPerf wrote no {RECORDS_FILE} in {artifact_dir}")
    return parse_records(records.read_text(encoding="utf-8"))
