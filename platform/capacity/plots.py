"""The capacity report's charts, each from the step records to an inline SVG string.

Offered rate is on a log axis (the probe doubles it); every chart marks the
capacity found (the knee: the highest rate at which every SLO held) and, where
it has one, the SLO's line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

from rolescope.gate.plots import BAD, CANDIDATE, GOOD, REFERENCE, _figure, to_svg

CLIENT_KEYS = {"ttft": "ttft_s", "e2e": "e2e_s", "tpot": "tpot_s"}
SERVER_KEYS = {"ttft": "ttft_s", "e2e": "http_duration_s"}
PERCENTILES = (("p50", 1.0), ("p95", 0.7), ("p99", 0.45))


def _by_rate(steps: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One step per offered rate, in rate order: the last conclusive one measured there (a full step
    supersedes the short probe at the same rate)."""
    chosen: dict[float, dict[str, Any]] = {}
    for step in steps:
        if not step["client"].get("requests"):
            continue
        held = chosen.get(step["offered_rps"])
        if held is None or step["conclusive"] or not held["conclusive"]:
            chosen[step["offered_rps"]] = step
    return [chosen[rate] for rate in sorted(chosen)]


def _plain_log_ticks(axis: Any) -> None:
    """Ticks at 1, 2 and 5 of each decade, written as plain numbers (not 2×10¹)."""
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ScalarFormatter())
    axis.set_minor_formatter(NullFormatter())


def _mark_capacity(axes: Axes, capacity: float | None, high: float | None) -> None:
    if capacity is not None:
        axes.axvline(
            capacity, color=GOOD, linestyle="--", linewidth=1.2, label=f"capacity {capacity:.3g} req/s"
        )
        if high is not None:
            axes.axvspan(capacity, high, color=GOOD, alpha=0.08)
    axes.set_xscale("log")
    _plain_log_ticks(axes.xaxis)
    axes.set_xlabel("offered rate (req/s)")


def _outcomes(axes: Axes, steps: Sequence[dict[str, Any]], ys: Sequence[float]) -> None:
    for step, y in zip(steps, ys, strict=True):
        if not math.isnan(y):
            axes.scatter(
                [step["offered_rps"]],
                [y],
                s=30,
                zorder=3,
                color=GOOD if step["passed"] else BAD,
                edgecolors="none",
            )


def goodput_chart(
    steps: Sequence[dict[str, Any]], objective: float | None, capacity: float | None, high: float | None
) -> str:
    figure, axes = _figure()
    ordered = _by_rate(steps)
    xs = [s["offered_rps"] for s in ordered]
    ys = [100 * s["client"]["goodput"] for s in ordered]
    axes.plot(xs, ys, color=CANDIDATE, linewidth=1, label="goodput")
    _outcomes(axes, ordered, ys)
    if objective is not None:
        axes.axhline(100 * objective, color=BAD, linewidth=1, label=f"objective {100 * objective:g} %")
    _mark_capacity(axes, capacity, high)
    axes.set_ylabel("goodput (% of requests)")
    axes.set_title("Goodput against offered rate (green: every SLO held, red: one failed)", fontsize=10)
    axes.legend(fontsize=8, loc="lower left")
    return to_svg(figure)


def latency_chart(
    steps: Sequence[dict[str, Any]],
    metric: str,
    threshold_s: float | None,
    capacity: float | None,
    high: float | None,
) -> str:
    figure, axes = _figure()
    ordered = [s for s in _by_rate(steps) if s["client"].get(CLIENT_KEYS[metric], {}).get("count")]
    xs = [s["offered_rps"] for s in ordered]
    for name, alpha in PERCENTILES:
        ys = [1000 * s["client"][CLIENT_KEYS[metric]][name] for s in ordered]
        axes.plot(xs, ys, color=CANDIDATE, alpha=alpha, marker="o", markersize=3, label=f"client {name}")
    server_key = SERVER_KEYS.get(metric)
    if server_key is not None:
        points = [
            (s["offered_rps"], s["server"][server_key]["p99"])
            for s in ordered
            if s.get("server") and s["server"].get(server_key, {}).get("p99") is not None
        ]
        if points:
            axes.plot(
                [x for x, _ in points],
                [1000 * y for _, y in points],
                color=REFERENCE,
                linestyle=":",
                marker="s",
                markersize=3,
                label="server p99",
            )
    if threshold_s is not None:
        axes.axhline(1000 * threshold_s, color=BAD, linewidth=1, label=f"SLO {1000 * threshold_s:g} ms")
    _mark_capacity(axes, capacity, high)
    axes.set_yscale("log")
    _plain_log_ticks(axes.yaxis)
    axes.set_ylabel(f"{metric.upper()} (ms)")
    axes.set_title(f"{metric.upper()} percentiles against offered rate", fontsize=10)
    axes.legend(fontsize=7, loc="best", framealpha=0.8)
    return to_svg(figure)


def throughput_latency_chart(steps: Sequence[dict[str, Any]], metric: str) -> str:
    """Each step as (achieved throughput, p99 latency): the Pareto front of what the service can do."""
    figure, axes = _figure()
    ordered = [s for s in _by_rate(steps) if s["client"].get(CLIENT_KEYS[metric], {}).get("count")]
    for step in ordered:
        x = step["client"]["throughput_rps"]
        y = 1000 * step["client"][CLIENT_KEYS[metric]]["p99"]
        axes.scatter([x], [y], s=30, color=GOOD if step["passed"] else BAD, zorder=3, edgecolors="none")
        axes.annotate(
            f"{step['offered_rps']:.3g}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points"
        )
    axes.set_xlabel("achieved throughput (successful req/s)")
    axes.set_ylabel(f"{metric.upper()} p99 (ms)")
    axes.set_yscale("log")
    _plain_log_ticks(axes.yaxis)
    axes.set_title(
        f"Throughput against {metric.upper()} p99 (labels: offered req/s; green held every SLO)", fontsize=10
    )
    return to_svg(figure)
