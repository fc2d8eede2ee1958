"""Render each dashboard panel's data from a Prometheus to a PNG, so a run can be looked at without Grafana.

Time series are drawn as lines, heatmaps as bucket-by-time colour maps (one
row per `le` bound), stats as one big number. `index.html` in the output
folder shows them all in dashboard order.
"""

from __future__ import annotations

import html
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolescope.dashboards.build import Dashboard, iter_panels
from rolescope.dashboards.promql import (
    PrometheusClient,
    PrometheusQueryError,
    Series,
    legend,
    render_for_prometheus,
)


@dataclass(frozen=True, slots=True)
class Rendered:
    dashboard_uid: str
    panel_title: str
    path: Path
    series: int
    error: str | None = None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "panel"


def _finite(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(t, v) for t, v in points if math.isfinite(v)]


def _draw_lines(ax: Any, results: list[tuple[str, Series]], unit: str, end: float) -> None:
    for name, series in results:
        points = _finite(series.points)
        if points:
            ax.plot([(t - end) / 60 for t, _ in points], [v for _, v in points], label=name[:60])
    ax.set_xlabel("minutes before the end of the window")
    ax.set_ylabel(unit)
    if 0 < len(results) <= 12:
        ax.legend(fontsize="small", loc="best")


def _bound(series: Series) -> float:
    le = series.labels.get("le", "+Inf")
    return math.inf if le == "+Inf" else float(le)


def bucket_counts(rows: list[Series]) -> tuple[list[float], list[list[float]]]:
    """Cumulative `le` buckets → (times, per-bucket counts), as Grafana's heatmap format does.

    Rows are aligned on the union of their timestamps; a missing or NaN point counts 0.
    """
    rows = sorted(rows, key=_bound)
    times = sorted({t for s in rows for t, _ in s.points})
    cumulative = []
    for series in rows:
        values = dict(series.points)
        cumulative.append([values.get(t, 0.0) if math.isfinite(values.get(t, 0.0)) else 0.0 for t in times])
    counts = [
        [max(0.0, cur - prev) for cur, prev in zip(row, cumulative[i - 1], strict=True)] if i else row
        for i, row in enumerate(cumulative)
    ]
    return times, counts


def _draw_heatmap(ax: Any, results: list[tuple[str, Series]], unit: str, end: float) -> None:
    rows = sorted((s for _, s in results), key=_bound)
    if not rows:
        return
    times, counts = bucket_counts(rows)
    left, right = (times[0] - end) / 60, (times[-1] - end) / 60
    if right <= left:
        right = left + 1 / 60
    ax.imshow(
        counts,
        aspect="auto",
        origin="lower",
        cmap="Oranges",
        interpolation="nearest",
        extent=(left, right, -0.5, len(rows) - 0.5),
    )
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([s.labels.get("le", "") for s in rows], fontsize="x-small")
    ax.set_ylabel(f"upper bound ({unit})" if unit else "upper bound")
    ax.set_xlabel("minutes before the end of the window")


def _draw_stat(ax: Any, results: list[tuple[str, Series]], unit: str, end: float) -> None:
    ax.axis("off")
    if not results:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", fontsize=20, color="grey")
        return
    value = results[0][1].points[-1][1]
    shown = f"{value:.4g}" if math.isfinite(value) else str(value)
    ax.text(0.5, 0.5, f"{shown} {unit}", ha="center", va="center", fontsize=28)


def render_panel(
    client: PrometheusClient,
    panel: dict[str, Any],
    path: Path,
    start: float,
    end: float,
    step: float,
    rate_interval: str,
) -> tuple[int, str | None]:
    """Query the panel's targets and draw them into `path`; (series drawn, error or None)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kind = str(panel.get("type", "timeseries"))
    unit = str(
        panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        or (panel.get("options") or {}).get("yAxis", {}).get("unit", "")
    )
    results: list[tuple[str, Series]] = []
    error = None
    for target in panel.get("targets", []) or []:
        expr = render_for_prometheus(
            str(target.get("expr", "")), rate_interval=rate_interval, range_=f"{int(end - start)}s"
        )
        try:
            found = client.instant(expr, at=end) if kind == "stat" else client.range(expr, start, end, step)
        except PrometheusQueryError as exc:
            error = str(exc)
            continue
        results += [(legend(str(target.get("legendFormat", "")), s.labels), s) for s in found]
    figure, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
    try:
        ax.set_title(str(panel.get("title", "")), fontsize="medium")
        {"heatmap": _draw_heatmap, "stat": _draw_stat}.get(kind, _draw_lines)(ax, results, unit, end)
        if not results and kind != "stat":
            ax.text(
                0.5, 0.5, error or "no data", ha="center", va="center", transform=ax.transAxes, color="grey"
            )
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)
    return len(results), error


def preview(
    dashboards: dict[str, Dashboard],
    prometheus_url: str,
    out_dir: Path,
    minutes: float = 30.0,
    rate_interval: str = "1m",
    end: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Rendered]:
    """Write one PNG per panel with queries under `out_dir/<dashboard uid>/`, and an index.html."""
    end = end if end is not None else time.time()
    start = end - minutes * 60
    step = max(1.0, (end - start) / 240)
    rendered: list[Rendered] = []
    with PrometheusClient(prometheus_url) as client:
        for uid, dashboard in dashboards.items():
            folder = out_dir / uid
            folder.mkdir(parents=True, exist_ok=True)
            for panel in iter_panels(dashboard):
                if not panel.get("targets"):
                    continue
                path = folder / f"{int(panel['id']):02d}-{_slug(str(panel.get('title', '')))}.png"
                count, error = render_panel(client, panel, path, start, end, step, rate_interval)
                rendered.append(Rendered(uid, str(panel.get("title", "")), path, count, error))
                if progress is not None:
                    progress(f"{uid}: {panel.get('title', '')}")
    _write_index(out_dir, dashboards, rendered)
    return rendered


def _write_index(out_dir: Path, dashboards: dict[str, Dashboard], rendered: list[Rendered]) -> None:
    parts = [
        "<!doctype html><meta charset=utf-8><title>rolescope dashboards preview</title>",
        "<style>body{font-family:sans-serif} img{max-width:48%;margin:4px}</style>",
    ]
    for uid, dashboard in dashboards.items():
        parts.append(f"<h2>{html.escape(str(dashboard.get('title', uid)))}</h2>")
        for item in rendered:
            if item.dashboard_uid == uid:
                rel = item.path.relative_to(out_dir).as_posix()
                parts.append(f'<img src="{html.escape(rel)}" alt="{html.escape(item.panel_title)}">')
    (out_dir / "index.html").write_text("\n".join(parts) + "\n", encoding="utf-8")
