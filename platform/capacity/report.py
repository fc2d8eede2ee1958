"""`summary.md` and `report.html` of a capacity run, both from the `capacity.json` document alone."""

from __future__ import annotations

from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from rolescope.capacity import plots

LATENCY_METRICS = ("ttft", "e2e", "tpot")
TRACE_JOIN_TITLE = (
    "Client − server TTFT of the same request, joined by trace id (network, queueing before the "
    "handler, the handler's work before inference, the load generator)"
)


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{1000 * value:.0f} ms"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g} req/s"


def step_rows(document: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for step in document["steps"]:
        client, server = step["client"], step.get("server") or {}
        outcome = "held" if step["passed"] else f"failed: {step['early_stop'] or step['binding']}"
        rows.append(
            {
                "index": str(step["index"]),
                "phase": step["phase"],
                "offered": _rate(step["offered_rps"]),
                "requests": str(client.get("requests", 0)),
                "throughput": _rate(client.get("throughput_rps")),
                "goodput": _pct(client.get("goodput")),
                "errors": _pct(client.get("error_ratio")),
                "ttft_p99": _ms(
                    client.get("ttft_s", {}).get("p99") if client.get("ttft_s", {}).get("count") else None
                ),
                "server_ttft_p99": _ms(server.get("ttft_s", {}).get("p99")),
                "e2e_p99": _ms(
                    client.get("e2e_s", {}).get("p99") if client.get("e2e_s", {}).get("count") else None
                ),
                "server_e2e_p99": _ms(server.get("http_duration_s", {}).get("p99")),
                "cpu": _pct(server.get("cpu_utilization")),
                "in_flight": "–" if server.get("in_flight_max") is None else f"{server['in_flight_max']:.0f}",
                "outcome": outcome,
            }
        )
    return rows


def edge_comparison(document: dict[str, Any]) -> list[dict[str, str]]:
    """Client against server at the edge step: the difference is network, queueing and the client."""
    index = document["capacity"]["edge_step"]
    step = next((s for s in document["steps"] if s["index"] == index), None)
    if step is None or not step.get("server"):
        return []
    client, server = step["client"], step["server"]
    rows = []
    for label, client_key, server_key, diff in (
        ("TTFT", "ttft_s", "ttft_s", "ttft"),
        ("end to end", "e2e_s", "http_duration_s", "e2e"),
    ):
        if not client.get(client_key, {}).get("count"):
            continue
        for q in ("p50", "p95", "p99"):
            difference = server.get("difference", {}).get(f"{diff}_{q}_ms")
            rows.append(
                {
                    "figure": f"{label} {q}",
                    "client": _ms(client[client_key][q]),
                    "server": _ms(server[server_key][q]),
                    "difference": "–" if difference is None else f"{difference:+.0f} ms",
                }
            )
    return rows


def _fine_ms(value: float | None) -> str:
    return "–" if value is None else f"{1000 * value:+.1f} ms"


def trace_join_rows(document: dict[str, Any]) -> list[dict[str, str]]:
    """Per step: client − server TTFT of the same requests, joined by trace id (with --join-traces)."""
    rows = []
    for step in document["steps"]:
        join = step.get("trace_join")
        if not join:
            continue
        spread = join["client_minus_server_ttft_s"]
        joined = bool(join["joined"])
        rows.append(
            {
                "index": str(step["index"]),
                "offered": _rate(step["offered_rps"]),
                "joined": f"{join['joined']} of {join['requests_with_trace_id']}",
                **{q: _fine_ms(spread[q] if joined else None) for q in ("p50", "p95", "p99", "max")},
                "min": _fine_ms(join["min_s"]),
            }
        )
    return rows


def headline(document: dict[str, Any]) -> str:
    capacity = document["capacity"]
    low, high = capacity["bracket"]["low"], capacity["bracket"]["high"]
    reason = document["search"]["stop_reason"]
    if low is None:
        return f"No offered rate held every SLO (search stopped: {reason})."
    bracket = f"between {low:.3g} and {high:.3g} req/s" if high is not None else f"above {low:.3g} req/s"
    binding = f"; {capacity['binding_slo']} breaks first above it" if capacity["binding_slo"] else ""
    return (
        f"One replica holds every SLO up to **{low:.3g} req/s** (the capacity lies {bracket}, "
        f"search stopped: {reason}){binding}."
    )


def sizing_lines(document: dict[str, Any]) -> list[str]:
    sizing = document.get("sizing")
    if not sizing:
        return []
    return [
        f"For {sizing['target_rps']:g} req/s with {100 * sizing['headroom']:g} % headroom: "
        f"**{sizing['replicas']} replicas** at {sizing['per_pod_rps']:.3g} req/s each "
        f"(HPA target {sizing['per_pod_rps']:.3g} req/s per pod, up to {sizing['max_replicas']} replicas, "
        f"concurrency limit {sizing['concurrency_limit']} per pod); Helm values in `{sizing['helm_values']}`."
    ]


def render_summary(document: dict[str, Any]) -> str:
    lines = [f"## Capacity of {document['service']['url']}", "", headline(document), ""]
    lines += sizing_lines(document)
    lines += [
        "",
        f"SLO spec: {document['slo']['source']}; {len(document['steps'])} steps in "
        f"{document['search']['wall_s']:.0f} s, precision ±{100 * document['search']['precision']:g} %.",
        "",
        "| # | phase | offered | requests | throughput | goodput | errors | TTFT p99 client / server "
        "| e2e p99 client / server | CPU | outcome |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in step_rows(document):
        lines.append(
            f"| {row['index']} | {row['phase']} | {row['offered']} | {row['requests']} | {row['throughput']} "
            f"| {row['goodput']} | {row['errors']} | {row['ttft_p99']} / {row['server_ttft_p99']} "
            f"| {row['e2e_p99']} / {row['server_e2e_p99']} | {row['cpu']} | {row['outcome']} |"
        )
    comparison = edge_comparison(document)
    if comparison:
        lines += [
            "",
            "Client and server side at the capacity (difference: network, queueing, the client):",
            "",
        ]
        lines += ["| figure | client | server | difference |", "|---|---|---|---|"]
        lines += [
            f"| {r['figure']} | {r['client']} | {r['server']} | {r['difference']} |" for r in comparison
        ]
    joins = trace_join_rows(document)
    if joins:
        lines += ["", f"{TRACE_JOIN_TITLE}:", ""]
        lines += [
            "| # | offered | joined | min | p50 | p95 | p99 | max |",
            "|---|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['index']} | {r['offered']} | {r['joined']} | {r['min']} | {r['p50']} | {r['p95']} "
            f"| {r['p99']} | {r['max']} |"
            for r in joins
        ]
    return "\n".join(lines) + "\n"


def charts(document: dict[str, Any]) -> list[tuple[str, str]]:
    steps = document["steps"]
    capacity = document["capacity"]["bracket"]["low"]
    high = document["capacity"]["bracket"]["high"]
    objectives = document["slo"]["objectives"]
    goodput = next((o["objective"] for o in objectives if o["sli"] == "goodput"), None)
    found: list[tuple[str, str]] = [("Goodput", plots.goodput_chart(steps, goodput, capacity, high))]
    for metric in LATENCY_METRICS:
        thresholds = [o["threshold_s"] for o in objectives if o["sli"] == "latency" and o["metric"] == metric]
        if not thresholds and metric == "tpot":
            continue
        if any(s["client"].get(plots.CLIENT_KEYS[metric], {}).get("count") for s in steps):
            threshold = min(thresholds) if thresholds else None
            found.append((metric.upper(), plots.latency_chart(steps, metric, threshold, capacity, high)))
    metric = "ttft" if any(s["client"].get("ttft_s", {}).get("count") for s in steps) else "e2e"
    found.append(("Throughput against latency", plots.throughput_latency_chart(steps, metric)))
    return found


def render_report(document: dict[str, Any]) -> str:
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template_text = (
        resources.files("rolescope.capacity").joinpath("report.html.j2").read_text(encoding="utf-8")
    )
    template = environment.from_string(template_text)
    return template.render(
        document=document,
        headline=headline(document).replace("**", ""),
        sizing=[line.replace("**", "").replace("`", "") for line in sizing_lines(document)],
        rows=step_rows(document),
        comparison=edge_comparison(document),
        joins=trace_join_rows(document),
        join_title=TRACE_JOIN_TITLE,
        charts=[(title, Markup(svg)) for title, svg in charts(document)],
    )
