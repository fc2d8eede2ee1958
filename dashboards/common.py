"""Shared pieces of every rolescope dashboard, built with grafana-foundation-sdk.

Every dashboard gets a stable uid, a Prometheus datasource variable (so one
JSON works against any Prometheus) and a `role` variable; panels get stable
ids and a layout in reading order. PromQL uses Grafana's `$__rate_interval`
and `$role`; `promql.render_for_prometheus` swaps them for plain values when a
panel is checked or previewed without Grafana.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import heatmap, prometheus, stat, text, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import BigValueGraphMode
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DataTransformerConfig,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from rolescope.exporters import names

DATASOURCE_VARIABLE = "datasource"
DATASOURCE = DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}")
RATE = "$__rate_interval"
ROLE = f'{names.LABEL_ROLE}=~"$role"'
TAGS = ["rolescope"]
_REF_IDS = "ABCDEFGHIJ"

Target = tuple[str, str]  # (PromQL, legend format)

# Requests the service cannot tie to a role (health probes, /metrics scrapes, unknown roles)
# carry the role label `<unknown>`; a legend says what they are instead.
NO_ROLE_NAME = "no role (probes, /metrics, unknown roles)"
_ROLE_LEGEND = f"{{{{{names.LABEL_ROLE}}}}}"


def name_unknown_role() -> DataTransformerConfig:
    """Grafana's renameByRegex: every series name holding `<unknown>` says what it counts."""
    return DataTransformerConfig(
        id_val="renameByRegex",
        options={"regex": f"(.*){names.UNKNOWN_ROLE}(.*)", "renamePattern": f"$1{NO_ROLE_NAME}$2"},
    )


def datasource_variable() -> db.DatasourceVariable:
    return db.DatasourceVariable(DATASOURCE_VARIABLE).label("Prometheus").type("prometheus")


def role_variable() -> db.QueryVariable:
    return (
        db.QueryVariable("role")
        .label("Role")
        .datasource(DATASOURCE)
        .query(f"label_values({names.HTTP_REQUESTS_TOTAL}, {names.LABEL_ROLE})")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def new_dashboard(uid: str, title: str, description: str, with_role: bool = True) -> db.Dashboard:
    builder = (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .with_variable(datasource_variable())
    )
    if with_role:
        builder = builder.with_variable(role_variable())
    return builder


def _queries(
    targets: list[Target], fmt: PromQueryFormat | None = None, instant: bool = False
) -> list[prometheus.Dataquery]:
    out = []
    for index, (expr, legend) in enumerate(targets):
        query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(_REF_IDS[index])
        if fmt is not None:
            query = query.format(fmt)
        if instant:
            query = query.instant()
        out.append(query)
    return out


def timeseries_panel(
    title: str, description: str, unit: str, targets: list[Target], width: int = 12
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .height(8)
        .span(width)
        .fill_opacity(10)
    )
    for query in _queries(targets):
        panel = panel.with_target(query)
    if any(_ROLE_LEGEND in legend for _, legend in targets):
        panel = panel.with_transformation(name_unknown_role())
    return panel


def heatmap_panel(
    title: str, description: str, histogram: str, width: int = 12, selector: str = ROLE
) -> heatmap.Panel:
    expr = f"sum by (le) (increase({histogram}_bucket{{{selector}}}[{RATE}]))"
    panel = heatmap.Panel().title(title).description(description).datasource(DATASOURCE).height(8).span(width)
    for query in _queries([(expr, "{{le}}")], fmt=PromQueryFormat.HEATMAP):
        panel = panel.with_target(query)
    return panel.calculate(False).y_axis(heatmap.YAxisConfig().unit("s"))


def stat_panel(
    title: str,
    description: str,
    unit: str,
    expr: str,
    legend: str = "",
    thresholds: list[tuple[float | None, str]] | None = None,
    width: int = 6,
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .height(5)
        .span(width)
        .graph_mode(BigValueGraphMode.AREA)
    )
    for query in _queries([(expr, legend)], instant=True):
        panel = panel.with_target(query)
    if thresholds:
        steps = [Threshold(value=value, color=color) for value, color in thresholds]
        panel = panel.thresholds(db.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps))
    return panel


def text_panel(title: str, content: str, width: int = 24, height: int = 4) -> text.Panel:
    return text.Panel().title(title).content(content).height(height).span(width)


def quantiles(
    histogram: str,
    by: str,
    legend_prefix: str = "",
    selector: str = ROLE,
    levels: tuple[float, ...] = (0.5, 0.95, 0.99),
) -> list[Target]:
    """p50/p95/p99 of a histogram, one series per `by` label value."""
    out: list[Target] = []
    for q in levels:
        expr = f"histogram_quantile({q}, sum by (le, {by}) (rate({histogram}_bucket{{{selector}}}[{RATE}])))"
        out.append((expr, f"{legend_prefix}p{round(q * 100)} {{{{{by}}}}}"))
    return out


def to_json(builder: db.Dashboard) -> dict[str, Any]:
    """The dashboard as plain JSON data, with stable sequential panel ids."""
    data: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    next_id = 1
    for panel in data.get("panels", []):
        panel["id"] = next_id
        next_id += 1
        for inner in panel.get("panels", []):
            inner["id"] = next_id
            next_id += 1
    # The SDK gives every variable the same placeholder id; Grafana keys them by name.
    for variable in data.get("templating", {}).get("list", []):
        variable.pop("id", None)
    return data


def dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
