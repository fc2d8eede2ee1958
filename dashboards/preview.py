"""Render each dashboard panel's data from a Prometheus to a PNG, so a run can be looked at without Grafana.

Panels keep Grafana's layout: grouped under their rows, as wide as their grid
width, values in the units Grafana would print (`units.py`), series renamed by
the panel's own `renameByRegex` transformations. A panel title that repeats in
a dashboard (the SLO rows repeat the same panels per SLO) is drawn with its
row's subject in front, so every picture says which SLO it shows. Time series
are lines, heatmaps bucket-by-time colour maps, stats one big number coloured
by the panel's thresholds. `index.html` (a Jinja2 template) shows them all.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rolescope.dashboards.build import Dashboard
from rolescope.dashboards.promql import (
    PrometheusClient,
    PrometheusQueryError,
    Series,
    legend,
    render_for_prometheus,
)
from rolescope.dashboards.units import format_value, tick_labels

INDEX_TEMPLATE = "preview_index.html.j2"
_GRID_COLUMNS = 24
_FULL_WIDTH_INCHES = 16.0


@dataclass(frozen=True, slots=True)
class PanelView:
    """One panel where the preview places it: its dashboard, its row, its title in context."""

    dashboard_uid: str
    row: str  # "" for panels above the first row
    title: str  # as the dashboard names it
    shown_title: str  # with the row's subject in front when the title repeats in the dashboard
    panel: dict[str, Any] = field(compare=False, repr=False)

    @property
    def kind(self) -> str:
        return str(self.panel.get("type", "timeseries"))

    @property
    def unit(self) -> str:
        defaults = (self.panel.get("fieldConfig") or {}).get("defaults") or {}
        y_axis = (self.panel.get("options") or {}).get("yAxis") or {}
        return str(defaults.get("unit") or y_axis.get("unit") or "")

    @property
    def width(self) -> int:
        return int((self.panel.get("gridPos") or {}).get("w", 12))

    @property
    def height(self) -> int:
        return int((self.panel.get("gridPos") or {}).get("h", 8))


@dataclass(frozen=True, slots=True)
class Rendered:
    dashboard_uid: str
    panel_title: str
    path: Path
    series: int
    error: str | None = None
    row: str = ""
    shown_title: str = ""
    headline: str = ""  # the value a stat panel shows, as text


def row_subject(row_title: str) -> str:
    """What a row is about: "chat-availability — objective 99.9 % over 30d" → "chat-availability"."""
    return row_title.split(" — ", 1)[0].strip()


def layout(uid: str, dashboard: Dashboard) -> list[PanelView]:
    """Every panel with queries, in dashboard order, with its row and a title that says what it shows."""
    placed: list[tuple[str, dict[str, Any]]] = []
    row = ""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            row = str(panel.get("title", ""))
            placed += [(row, inner) for inner in panel.get("panels", [])]
        else:
            placed.append((row, panel))
    with_queries = [(r, p) for r, p in placed if p.get("targets")]
    repeats = Counter((str(p.get("title", "")), p.get("type")) for _, p in with_queries)
    views = []
    for row_title, panel in with_queries:
        title = str(panel.get("title", ""))
        repeated = repeats[(title, panel.get("type"))] > 1
        shown = f"{row_subject(row_title)}: {title}" if repeated and row_title else title
        views.append(PanelView(uid, row_title, title, shown, panel))
    return views


def _js_replacement(pattern: str) -> str:
    # Grafana's renameByRegex takes a JavaScript replacement ("$1"); Python's re wants "\1".
    return re.sub(r"\$(\d+)", r"\\\1", pattern)


def series_name(panel: dict[str, Any], template: str, labels: dict[str, str]) -> str:
    """The legend Grafana would show: the legend format filled in, then the panel's renames applied."""
    name = legend(template, labels)
    for transformation in panel.get("transformations") or []:
        options = transformation.get("options") or {}
        if transformation.get("id") == "renameByRegex" and options.get("regex"):
            replacement = _js_replacement(str(options.get("renamePattern", "")))
            name = re.sub(str(options["regex"]), replacement, name, count=1)
    return name


def _finite(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(t, v) for t, v in points if math.isfinite(v)]


def _unit_axis(axis: Any, unit: str) -> None:
    from matplotlib.ticker import Formatter

    class UnitFormatter(Formatter):  # type: ignore[misc]
        def __call__(self, x: float, pos: int | None = None) -> str:
            return format_value(x, unit)

        def format_ticks(self, values: Any) -> list[str]:
            return tick_labels([float(v) for v in values], unit)

    axis.set_major_formatter(UnitFormatter())


def _draw_lines(ax: Any, view: PanelView, results: list[tuple[str, Series]], end: float) -> str:
    values: list[float] = []
    for name, series in results:
        points = _finite(series.points)
        if points:
            ax.plot([(t - end) / 60 for t, _ in points], [v for _, v in points], label=name[:60])
            values += [v for _, v in points]
    if values and min(values) >= 0 and ax.get_ylim()[0] < 0:
        # A flat line at zero (no burn, no errors) must not draw an axis of negative rates.
        ax.set_ylim(bottom=0, top=max(values) * 1.1 if max(values) > 0 else 1.0)
    _unit_axis(ax.yaxis, view.unit)
    ax.set_xlabel("minutes before the end of the window")
    ax.grid(alpha=0.25)
    if 0 < len(results) <= 12:
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return ""


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


def bucket_label(le: str, unit: str) -> str:
    return le if le == "+Inf" else "≤ " + format_value(float(le), unit)


def _draw_heatmap(ax: Any, view: PanelView, results: list[tuple[str, Series]], end: float) -> str:
    rows = sorted((s for _, s in results), key=_bound)
    if not rows:
        return ""
    times, counts = bucket_counts(rows)
    left, right = (times[0] - end) / 60, (times[-1] - end) / 60
    if right <= left:
        right = left + 1 / 60
    image = ax.imshow(
        counts,
        aspect="auto",
        origin="lower",
        cmap="Oranges",
        interpolation="nearest",
        extent=(left, right, -0.5, len(rows) - 0.5),
    )
    ax.figure.colorbar(image, ax=ax, label="requests per interval", pad=0.01)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(
        [bucket_label(s.labels.get("le", "+Inf"), view.unit) for s in rows], fontsize="x-small"
    )
    ax.set_xlabel("minutes before the end of the window")
    return ""


def threshold_colour(panel: dict[str, Any], value: float) -> str:
    """The colour of the last threshold step at or below `value` (Grafana's absolute thresholds)."""
    steps = (((panel.get("fieldConfig") or {}).get("defaults") or {}).get("thresholds") or {}).get("steps")
    colour = "black"
    for step in steps or []:
        bound = step.get("value")
        if bound is None or (math.isfinite(value) and value >= float(bound)):
            colour = str(step.get("color", colour))
    return {"green": "#1a9641", "red": "#d7191c", "orange": "#e66101"}.get(colour, colour)


def _draw_stat(ax: Any, view: PanelView, results: list[tuple[str, Series]], end: float) -> str:
    ax.axis("off")
    if not results or not results[0][1].points:
        ax.text(0.5, 0.45, "no data", ha="center", va="center", fontsize=20, color="grey")
        return "no data"
    value = results[0][1].points[-1][1]
    shown = format_value(value, view.unit)
    ax.text(
        0.5, 0.45, shown, ha="center", va="center", fontsize=30, color=threshold_colour(view.panel, value)
    )
    return shown


_DRAW = {"heatmap": _draw_heatmap, "stat": _draw_stat}


def draw_panel(
    view: PanelView, results: list[tuple[str, Series]], error: str | None, end: float
) -> tuple[Any, str]:
    """A matplotlib Figure of the panel, sized by its grid width, and the value a stat shows."""
    from matplotlib.figure import Figure

    width = _FULL_WIDTH_INCHES * min(view.width, _GRID_COLUMNS) / _GRID_COLUMNS
    figure = Figure(figsize=(max(width, 3.5), max(2.0, 0.42 * view.height)), dpi=100)
    ax = figure.add_subplot()
    ax.set_title(view.shown_title, fontsize="medium", loc="left")
    headline = _DRAW.get(view.kind, _draw_lines)(ax, view, results, end)
    if not results and view.kind != "stat":
        ax.axis("off")
        ax.text(0.5, 0.5, error or "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
    figure.tight_layout()
    return figure, headline


def query_panel(
    client: PrometheusClient, view: PanelView, start: float, end: float, step: float, rate_interval: str
) -> tuple[list[tuple[str, Series]], str | None]:
    """(legend name, series) of every target of the panel, and the last query error if any."""
    results: list[tuple[str, Series]] = []
    error = None
    for target in view.panel.get("targets", []) or []:
        expr = render_for_prometheus(
            str(target.get("expr", "")), rate_interval=rate_interval, range_=f"{int(end - start)}s"
        )
        try:
            found = (
                client.instant(expr, at=end) if view.kind == "stat" else client.range(expr, start, end, step)
            )
        except PrometheusQueryError as exc:
            error = str(exc)
            continue
        template = str(target.get("legendFormat", ""))
        results += [(series_name(view.panel, template, s.labels), s) for s in found]
    return results, error


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "panel"


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
            for view in layout(uid, dashboard):
                path = folder / f"{int(view.panel['id']):02d}-{_slug(view.shown_title)}.png"
                results, error = query_panel(client, view, start, end, step, rate_interval)
                figure, headline = draw_panel(view, results, error, end)
                figure.savefig(path)
                rendered.append(
                    Rendered(uid, view.title, path, len(results), error, view.row, view.shown_title, headline)
                )
                if progress is not None:
                    progress(f"{uid}: {view.shown_title}")
    (out_dir / "index.html").write_text(index_html(out_dir, dashboards, rendered), encoding="utf-8")
    return rendered


def index_html(out_dir: Path, dashboards: dict[str, Dashboard], rendered: list[Rendered]) -> str:
    """The index page: dashboards, their rows, each panel's picture at its grid width."""
    from jinja2 import Environment, StrictUndefined

    views = {(v.dashboard_uid, v.title, v.row): v for uid, d in dashboards.items() for v in layout(uid, d)}
    pages = []
    for uid, dashboard in dashboards.items():
        rows: list[dict[str, Any]] = []
        for item in (r for r in rendered if r.dashboard_uid == uid):
            if not rows or rows[-1]["title"] != item.row:
                rows.append({"title": item.row, "panels": []})
            view = views.get((uid, item.panel_title, item.row))
            rows[-1]["panels"].append(
                {
                    "src": item.path.relative_to(out_dir).as_posix(),
                    "title": item.shown_title or item.panel_title,
                    "description": str(view.panel.get("description", "")) if view else "",
                    "width": min(view.width, _GRID_COLUMNS) if view else 12,
                    "error": item.error,
                    "empty": item.series == 0,
                }
            )
        pages.append(
            {
                "title": dashboard.get("title", uid),
                "description": dashboard.get("description", ""),
                "rows": rows,
            }
        )
    template = resources.files("rolescope.dashboards").joinpath(INDEX_TEMPLATE).read_text(encoding="utf-8")
    environment = Environment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)
    return environment.from_string(template).render(dashboards=pages, columns=_GRID_COLUMNS)
