"""Dashboards as code: golden JSON, stable uids, the datasource variable, metric names from one place."""

from __future__ import annotations

import re
from pathlib import Path

from rolescope.alerts.spec import load_slo_spec, parse_slo_spec
from rolescope.dashboards.build import build_all, iter_panels, load_dashboards, panel_queries, render_files
from rolescope.exporters import names

DASHBOARDS_DIR = Path(__file__).resolve().parents[2] / "dashboards"
UIDS = [
    "rolescope-overview",
    "rolescope-streaming",
    "rolescope-slos",
    "rolescope-loadtest",
    "rolescope-tuning",
]


def test_committed_json_matches_the_builders() -> None:
    for name, text in render_files().items():
        committed = (DASHBOARDS_DIR / name).read_text(encoding="utf-8")
        assert committed == text, f"{name} is stale: run `make golden`"
    assert sorted(p.name for p in DASHBOARDS_DIR.glob("rolescope-*.json")) == sorted(render_files())


def test_five_dashboards_with_stable_uids() -> None:
    assert list(build_all()) == UIDS
    assert list(load_dashboards(DASHBOARDS_DIR)) == sorted(UIDS)


def test_every_dashboard_has_a_prometheus_datasource_variable_used_by_every_panel() -> None:
    for uid, dashboard in build_all().items():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        for panel in iter_panels(dashboard):
            if panel.get("targets"):
                assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, (
                    uid,
                    panel["title"],
                )


def test_panel_ids_are_unique_and_stable() -> None:
    first, second = build_all(), build_all()
    for uid, dashboard in first.items():
        ids = [p["id"] for p in iter_panels(dashboard)]
        assert len(ids) == len(set(ids)) and ids == [p["id"] for p in iter_panels(second[uid])]


def metric_names(expr: str) -> set[str]:
    """Series names in a PromQL expression: drop grouping clauses, matchers, ranges and function calls."""
    text = re.sub(r"\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", text)
    words = re.findall(r"\b[a-zA-Z_][a-zA-Z0-9_:]*\b(?!\s*\()", text)
    keywords = {
        "or",
        "and",
        "unless",
        "offset",
        "bool",
        "by",
        "on",
        "without",
        "ignoring",
        "group_left",
        "group_right",
    }
    return {w for w in words if w not in keywords}


def test_queries_only_use_known_series() -> None:
    known = {value for key, value in vars(names).items() if key.isupper() and isinstance(value, str)}
    process = {
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "python_gc_collections_total",
        "ALERTS",
    }
    seen = set()
    for query in panel_queries(build_all()):
        for metric in metric_names(query.expr):
            seen.add(metric)
            if metric.startswith("slo:") or metric in process:
                continue
            base = re.sub(r"_(bucket|count|sum)$", "", metric)
            assert metric in known or base in known, (query.dashboard_uid, query.panel_title, metric)
    assert (
        names.HTTP_REQUESTS_TOTAL in seen
        and f"{names.GENAI_TTFT}_bucket" in seen
        and names.LOAD_USERS in seen
    )


def test_streaming_dashboard_has_heatmaps_and_percentiles() -> None:
    streaming = build_all()["rolescope-streaming"]
    panels = {p["title"]: p for p in iter_panels(streaming)}
    assert panels["TTFT heatmap"]["type"] == "heatmap"
    assert panels["TTFT heatmap"]["targets"][0]["format"] == "heatmap"
    assert panels["TPOT heatmap"]["type"] == "heatmap"
    assert "histogram_quantile(0.95" in panels["TTFT percentiles"]["targets"][1]["expr"]
    assert 'gen_ai_token_type="output"' in panels["Output tokens per second"]["targets"][0]["expr"]


def test_slo_dashboard_has_a_row_per_slo_of_the_spec() -> None:
    spec = load_slo_spec()
    slos = build_all(spec)["rolescope-slos"]
    rows = [p["title"] for p in slos["panels"] if p["type"] == "row"]
    assert rows[1:] == [f"{s.name} — objective {s.objective:g} % over {s.period}" for s in spec.slos]
    data = spec.model_dump()
    data["slos"] = data["slos"][:1]
    fewer = build_all(parse_slo_spec(data))["rolescope-slos"]
    assert len([p for p in fewer["panels"] if p["type"] == "row"]) == 2
