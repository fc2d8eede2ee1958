"""What a capacity run writes: `capacity.json`, `summary.md`, `report.html` and the Helm values snippet."""

from __future__ import annotations

import json
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

from rolescope.capacity.options import CapacityOptions
from rolescope.capacity.search import Done
from rolescope.capacity.sizing import Sizing, helm_snippet, size_for
from rolescope.capacity.steps import StepContext, StepRecord
from rolescope.gate.model import GatePolicy
from rolescope.rundir import REPORT_FILE, SUMMARY_FILE

CAPACITY_FILE = "capacity.json"
HELM_VALUES_FILE = "helm-values.yaml"
SCHEMA_VERSION = 1


def schema() -> dict[str, Any]:
    """The JSON schema `capacity.json` follows (committed beside this module)."""
    text = resources.files("rolescope.capacity").joinpath("capacity.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _edge(done: Done, steps: list[StepRecord]) -> tuple[StepRecord | None, StepRecord | None]:
    """The last conclusive step that held at the capacity, and the first conclusive failure above it."""
    low, high = done.bracket.low, done.bracket.high
    held = [s for s in steps if s.conclusive and s.passed and s.offered_rps == low]
    failed = [s for s in steps if s.conclusive and not s.passed and s.offered_rps == high]
    return (held[-1] if held else None), (failed[-1] if failed else None)


def build_document(
    options: CapacityOptions,
    policy: GatePolicy,
    context: StepContext,
    done: Done,
    steps: list[StepRecord],
    min_requests: int,
    wall_s: float,
    sizing: Sizing | None,
) -> dict[str, Any]:
    held, failed = _edge(done, steps)
    return {
        "schema_version": SCHEMA_VERSION,
        "service": {
            "url": context.url,
            "launched": options.target is None,
            "settings": dict(options.settings),
            "faults": dict(options.faults),
            "metrics_url": context.metrics_url,
            "prometheus": None
            if context.prometheus is None
            else {"url": context.prometheus.url, "selector": context.prometheus.selector},
            "user": options.user,
        },
        "slo": {
            "source": policy.source,
            "objectives": [
                {
                    "name": o.name,
                    "sli": o.sli,
                    "objective": o.objective,
                    "metric": o.metric,
                    "threshold_s": o.threshold_s,
                }
                for o in policy.objectives
            ],
        },
        "search": {
            "precision": options.precision,
            "time_budget_s": options.time_budget_s,
            "min_requests": min_requests,
            "probe_requests": options.probe_requests,
            "max_step_s": options.max_step_s,
            "warmup_s": options.warmup_s,
            "stop_reason": done.reason,
            "wall_s": wall_s,
        },
        "capacity": {
            "rate_rps": done.bracket.low,
            "bracket": {"low": done.bracket.low, "high": done.bracket.high},
            "width": done.bracket.width,
            "binding_slo": failed.binding if failed is not None else None,
            "edge_step": held.index if held is not None else None,
            "first_failure_step": failed.index if failed is not None else None,
        },
        "steps": [step.to_dict() for step in steps],
        "sizing": None if sizing is None else {**asdict(sizing), "helm_values": HELM_VALUES_FILE},
    }


def sizing_of(options: CapacityOptions, done: Done, steps: list[StepRecord]) -> Sizing | None:
    if options.target_rate is None or done.bracket.low is None:
        return None
    held, _ = _edge(done, steps)
    p99 = held.client.get("e2e_s", {}).get("p99") if held is not None else None
    limit = options.settings.get("concurrency_limit")
    return size_for(
        options.target_rate, done.bracket.low, options.headroom, p99, int(limit) if limit else None
    )


def write_outputs(
    out: Path,
    options: CapacityOptions,
    policy: GatePolicy,
    context: StepContext,
    done: Done,
    steps: list[StepRecord],
    min_requests: int,
    wall_s: float,
) -> tuple[dict[str, Any], dict[str, Path]]:
    from rolescope.capacity.report import render_report, render_summary

    sizing = sizing_of(options, done, steps)
    document = build_document(options, policy, context, done, steps, min_requests, wall_s, sizing)
    files = {"capacity": out / CAPACITY_FILE, "summary": out / SUMMARY_FILE, "report": out / REPORT_FILE}
    files["capacity"].write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    files["summary"].write_text(render_summary(document), encoding="utf-8")
    files["report"].write_text(render_report(document), encoding="utf-8")
    if sizing is not None:
        files["helm_values"] = out / HELM_VALUES_FILE
        files["helm_values"].write_text(helm_snippet(sizing), encoding="utf-8")
    return document, files
