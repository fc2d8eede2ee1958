"""The report's plots, each a function from plain run data to an inline SVG string.

Uses matplotlib's object API (`Figure`), never pyplot: no global state, no
backend to pick, safe to call from any thread.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rolescope.gate.model import FunctionShift, RunData
from rolescope.gate.runstats import metric_values
from rolescope.rundir import LatencyMetric

CANDIDATE = "#2563eb"
REFERENCE = "#9ca3af"
BAD = "#dc2626"
GOOD = "#16a34a"
PERCENTILES = ((50, "p50", 1.0), (95, "p95", 0.75), (99, "p99", 0.45))


def _figure(width: float = 7.0, height: float = 3.0) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(True, axis="y", alpha=0.25)
    return figure, axes


def to_svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    # Inline SVG must not carry its own XML prolog or DOCTYPE.
    return re.sub(r"^.*?(<svg)", r"\1", svg, count=1, flags=re.S)


def latency_over_time(runs: list[RunData], metric: LatencyMetric, label: str, buckets: int = 24) -> str:
    """p50 / p95 / p99 of one latency metric per time slice, pooled over runs aligned at their start."""
    figure, axes = _figure()
    span = max((run.duration_s for run in runs), default=1.0)
    edges = np.linspace(0, span, buckets + 1)
    slices: list[list[float]] = [[] for _ in range(buckets)]
    for run in runs:
        t0 = min((s.start for s in run.samples), default=0.0)
        for sample in run.samples:
            values = metric_values([sample], metric)
            index = min(int(np.searchsorted(edges, sample.start - t0, side="right")) - 1, buckets - 1)
            slices[max(index, 0)].extend(values)
    centres = (edges[:-1] + edges[1:]) / 2
    for q, name, alpha in PERCENTILES:
        ys = [1000 * float(np.percentile(v, q)) if v else math.nan for v in slices]
        axes.plot(centres, ys, color=CANDIDATE, alpha=alpha, marker="o", markersize=3, label=name)
    axes.set_xlabel("seconds into the run")
    axes.set_ylabel(f"{label} (ms)")
    axes.set_ylim(bottom=0)
    axes.legend(frameon=False, ncols=3)
    axes.set_title(f"{label} percentiles over time", loc="left", fontsize=11)
    return to_svg(figure)


def distribution(
    candidate: list[RunData],
    reference: list[RunData],
    metric: LatencyMetric,
    label: str,
    threshold_s: float | None = None,
) -> str:
    """Empirical CDF of a latency (candidate against reference), with the SLO threshold marked."""
    figure, axes = _figure()
    for runs, colour, name in ((reference, REFERENCE, "reference"), (candidate, CANDIDATE, "candidate")):
        values = np.sort(np.array(metric_values([s for r in runs for s in r.samples], metric))) * 1000
        if values.size:
            axes.step(
                values,
                np.arange(1, values.size + 1) / values.size,
                color=colour,
                where="post",
                label=f"{name} (n={values.size})",
                linewidth=1.8,
            )
    if threshold_s is not None:
        axes.axvline(threshold_s * 1000, color=BAD, linestyle="--", linewidth=1, label="SLO threshold")
    axes.set_xlabel(f"{label} (ms)")
    axes.set_ylabel("share of requests ≤ x")
    axes.set_ylim(0, 1.02)
    axes.legend(frameon=False, loc="lower right")
    axes.set_title(f"{label} distribution", loc="left", fontsize=11)
    return to_svg(figure)


def throughput_and_errors(runs: list[RunData], bucket_s: float = 1.0) -> str:
    """Requests per second and failed requests per second over the run (runs stacked by offset)."""
    figure, axes = _figure()
    span = max((run.duration_s for run in runs), default=1.0)
    bucket_s = max(bucket_s, span / 60)
    count = max(math.ceil(span / bucket_s), 1)
    ok = np.zeros(count)
    failed = np.zeros(count)
    for run in runs:
        t0 = min((s.start for s in run.samples), default=0.0)
        for sample in run.samples:
            index = min(int((sample.start - t0) / bucket_s), count - 1)
            (ok if sample.ok else failed)[index] += 1
    scale = bucket_s * max(len(runs), 1)
    xs = np.arange(count) * bucket_s
    axes.bar(xs, ok / scale, width=bucket_s * 0.9, align="edge", color=CANDIDATE, alpha=0.8, label="ok")
    axes.bar(
        xs, failed / scale, width=bucket_s * 0.9, align="edge", bottom=ok / scale, color=BAD, label="failed"
    )
    axes.set_xlabel("seconds into the run")
    axes.set_ylabel("requests / s (mean per run)")
    axes.legend(frameon=False, ncols=2)
    axes.set_title("throughput and errors over time", loc="left", fontsize=11)
    return to_svg(figure)


def memory_vs_baseline(
    memory: Mapping[str, float], baseline: Mapping[str, float], tolerances: Mapping[str, float]
) -> str:
    """Each memory figure as a share of its baseline (100 % = baseline), tolerance marked."""
    keys = sorted(set(memory) & set(baseline))
    figure, axes = _figure(7.0, 0.6 + 0.55 * max(len(keys), 1))
    axes.grid(True, axis="x", alpha=0.25)
    axes.grid(False, axis="y")
    for row, key in enumerate(keys):
        ratio = 100 * memory[key] / baseline[key] if baseline[key] else math.nan
        tolerance = next((t for suffix, t in tolerances.items() if key.endswith(suffix)), 0.0)
        colour = GOOD if ratio <= 100 * (1 + tolerance) else BAD
        axes.barh(row, ratio, color=colour, alpha=0.85, height=0.6)
        axes.plot([100 * (1 + tolerance)] * 2, [row - 0.4, row + 0.4], color=BAD, linewidth=1.5)
        axes.text(
            ratio,
            row,
            f"  {ratio:.1f} %  ({memory[key]:,.0f} vs {baseline[key]:,.0f})",
            va="center",
            fontsize=8,
        )
    axes.axvline(100, color="#111827", linewidth=1)
    axes.set_yticks(range(len(keys)), [k.replace("_", " ") for k in keys], fontsize=8)
    axes.set_xlim(0, max([130.0] + [100 * memory[k] / baseline[k] * 1.25 for k in keys if baseline[k]]))
    axes.set_xlabel("% of baseline (red tick: tolerance)")
    axes.set_title("memory per request vs baseline", loc="left", fontsize=11)
    return to_svg(figure)


def function_shares(shifts: list[FunctionShift], top: int = 10) -> str:
    """Change in each function's share of CPU samples, largest moves first."""
    chosen = sorted(shifts, key=lambda s: abs(s.delta), reverse=True)[:top][::-1]
    figure, axes = _figure(7.0, 0.6 + 0.4 * max(len(chosen), 1))
    axes.grid(True, axis="x", alpha=0.25)
    axes.grid(False, axis="y")
    deltas = [100 * s.delta for s in chosen]
    axes.barh(range(len(chosen)), deltas, color=[BAD if d > 0 else GOOD for d in deltas], alpha=0.85)
    labels = [s.function if len(s.function) < 60 else "…" + s.function[-58:] for s in chosen]
    axes.set_yticks(range(len(chosen)), labels, fontsize=7)
    axes.axvline(0, color="#111827", linewidth=1)
    axes.set_xlabel("change in share of CPU samples (percentage points)")
    axes.set_title("function-share changes, candidate vs reference", loc="left", fontsize=11)
    return to_svg(figure)
