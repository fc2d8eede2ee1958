"""Build every dashboard and write `dashboards/<uid>.json` (`rolescope dashboards build`).

The JSON is committed next to its generator; the golden test rebuilds it and
fails on any difference. `panel_queries` lists each panel's PromQL for the
live checks and the PNG preview.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolescope.alerts.spec import SloSpec, load_slo_spec
from rolescope.dashboards import runs, service, slos
from rolescope.dashboards.common import dump, to_json

Dashboard = dict[str, Any]


def build_all(spec: SloSpec | None = None) -> dict[str, Dashboard]:
    """uid → dashboard JSON, in a stable order."""
    spec = spec if spec is not None else load_slo_spec()
    builders = [service.overview(), service.streaming(), slos.slos(spec), runs.loadtest(), runs.tuning()]
    out: dict[str, Dashboard] = {}
    for builder in builders:
        data = to_json(builder)
        out[str(data["uid"])] = data
    return out


def render_files(spec: SloSpec | None = None) -> dict[str, str]:
    """File name → text of every dashboard file."""
    return {f"{uid}.json": dump(data) for uid, data in build_all(spec).items()}


def default_output_dir() -> Path:
    return Path(__file__).resolve().parent


def write_dashboards(out_dir: Path, spec: SloSpec | None = None) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_files(spec).items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def load_dashboards(folder: Path) -> dict[str, Dashboard]:
    """The committed (or any) dashboard JSON files of a folder, by uid."""
    out: dict[str, Dashboard] = {}
    for path in sorted(folder.glob("rolescope-*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        out[str(data["uid"])] = data
    return out


@dataclass(frozen=True, slots=True)
class PanelQuery:
    dashboard_uid: str
    panel_id: int
    panel_title: str
    panel_type: str
    ref_id: str
    expr: str
    legend: str
    instant: bool


def iter_panels(dashboard: Dashboard) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(dashboards: dict[str, Dashboard]) -> list[PanelQuery]:
    """Every Prometheus target of every panel, in dashboard order."""
    out = []
    for uid, dashboard in dashboards.items():
        for panel in iter_panels(dashboard):
            for target in panel.get("targets", []) or []:
                if "expr" not in target:
                    continue
                out.append(
                    PanelQuery(
                        dashboard_uid=uid,
                        panel_id=int(panel["id"]),
                        panel_title=str(panel.get("title", "")),
                        panel_type=str(panel.get("type", "")),
                        ref_id=str(target.get("refId", "")),
                        expr=str(target["expr"]),
                        legend=str(target.get("legendFormat", "")),
                        instant=bool(target.get("instant", False)),
                    )
                )
    return out
