"""`report.html`: one self-contained page — verdict banner, checks, then the plots behind them."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rolescope.gate import plots
from rolescope.gate.judge import headline
from rolescope.gate.memory_check import ALLOCATIONS, BYTES
from rolescope.gate.model import CheckResult, FunctionShift, GatePolicy, RunData, Verdict
from rolescope.rundir import REPORT_FILE

_CSS = """

body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;background:#f3f4f6;color:#111827}
main{max-width:1180px;margin:0 auto;padding:24px}
.banner{border-radius:12px;padding:20px 24px;color:#fff;margin-bottom:20px}
.pass{background:linear-gradient(90deg,#15803d,#16a34a)}
.fail{background:linear-gradient(90deg,#b91c1c,#dc2626)}.banner h1{margin:0 0 6px;font-size:26px}
.banner p{margin:2px 0;opacity:.92}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:12px;margin-bottom:20px}
.card{background:#fff;border-radius:10px;padding:12px 14px;border-left:6px solid #16a34a;
box-shadow:0 1px 2px #0001}
.card.bad{border-left-color:#dc2626}.card .name{font-weight:600;font-size:13px;overflow-wrap:anywhere}
.card .fig{font-size:22px;font-weight:700;margin:4px 0}
.badge{display:inline-block;border-radius:9px;padding:0 7px;font-size:11px;font-weight:700;color:#fff;
margin-right:6px}
.badge.ok{background:#16a34a}.badge.no{background:#dc2626}.single svg{max-width:780px}
.card .msg{color:#4b5563;font-size:12px}
.bar{height:6px;border-radius:3px;background:#e5e7eb;margin-top:8px;overflow:hidden}
.bar span{display:block;height:100%}
section{background:#fff;border-radius:10px;padding:16px 18px;margin-bottom:16px;box-shadow:0 1px 2px #0001}
section h2{margin:0 0 10px;font-size:17px}.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}
.grid svg,section svg{width:100%;height:auto}
table{border-collapse:collapse;width:100%;font-size:13px}
td,th{padding:5px 8px;border-bottom:1px solid #e5e7eb;text-align:left}code{font-size:12px}
.muted{color:#6b7280}a{color:#2563eb}@media(max-width:900px){.grid{grid-template-columns:1fr}}
"""


@dataclass
class ReportInputs:
    verdict: Verdict
    policy: GatePolicy
    candidate: list[RunData]
    reference: list[RunData] = field(default_factory=list)
    memory: Mapping[str, float] = field(default_factory=dict)
    memory_baseline: Mapping[str, float] = field(default_factory=dict)
    function_shifts: list[FunctionShift] = field(default_factory=list)
    # name → relative link (flame graphs, speedscope, Locust's report, the other files)
    links: Mapping[str, str] = field(default_factory=dict)
    title: str = "rolescope tuning report"


def _figure_text(check: CheckResult) -> str:
    if math.isinf(check.figure):
        return "+∞ %"
    if check.kind == "slo":
        return f"{100 * check.figure:.2f} %"
    if check.unit == "absolute" and not check.statistics.get("figure_unit"):
        return f"{100 * check.figure:+.2f} pp"
    return f"{100 * check.figure:+.1f} %"


def _bar(check: CheckResult) -> str:
    """How much of the allowance the figure uses (full and red once over the limit)."""
    if check.direction == "min":
        budget = 1 - check.limit
        used = (1 - check.figure) / budget if budget > 0 else 0.0
    else:
        used = check.figure / check.limit if check.limit > 0 else (0.0 if check.figure <= 0 else 2.0)
    used = 0.0 if math.isnan(used) else max(0.0, min(used, 1.0))
    colour = "#dc2626" if not check.passed else "#f59e0b" if used > 0.75 else "#16a34a"
    return f'<div class="bar"><span style="width:{100 * used:.0f}%;background:{colour}"></span></div>'


def _badge(passed: bool) -> str:
    return '<span class="badge ok">PASS</span>' if passed else '<span class="badge no">FAIL</span>'


def _cards(verdict: Verdict) -> str:
    ordered = sorted(verdict.checks, key=lambda c: c.passed)
    cards = []
    for check in ordered:
        cards.append(
            f'<div class="card{"" if check.passed else " bad"}" title="{html.escape(check.description)}">'
            f'<div class="name">{_badge(check.passed)}{html.escape(check.name)}</div>'
            f'<div class="fig">{_figure_text(check)}</div>'
            f'<div class="msg">{html.escape(check.message)}</div>{_bar(check)}</div>'
        )
    return f'<div class="cards">{"".join(cards)}</div>'


def _threshold(policy: GatePolicy, metric: str) -> float | None:
    return next((o.threshold_s for o in policy.objectives if o.metric == metric), None)


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{body}</section>"


def _hot_functions(verdict: Verdict) -> str:
    widest = max(verdict.hot_functions[0][1], 1e-9)
    rows = "".join(
        f"<tr><td><code>{html.escape(name)}</code></td><td>{100 * share:.1f} %</td>"
        f'<td style="width:40%"><div class="bar"><span style="width:{min(100, 100 * share / widest):.0f}%;'
        'background:#2563eb"></span></div></td></tr>'
        for name, share in verdict.hot_functions
    )
    return (
        '<p class="muted">Share of CPU samples where each function was running (idle waits left out). '
        "Run with a reference to see which shares grew.</p>"
        f"<table><tr><th>function</th><th>self share</th><th></th></tr>{rows}</table>"
    )


def _suspects(verdict: Verdict) -> str:
    if not verdict.suspects:
        return ""
    rows = "".join(
        f"<tr><td><code>{html.escape(s.function)}</code></td><td>{100 * s.reference_share:.2f} %</td>"
        f"<td>{100 * s.candidate_share:.2f} %</td><td><b>{100 * s.delta:+.2f} pp</b></td></tr>"
        for s in verdict.suspects
    )
    return (
        "<table><tr><th>look here first</th><th>reference</th><th>candidate</th><th>change</th></tr>"
        f"{rows}</table>"
    )


def render_report(inputs: ReportInputs) -> str:
    verdict = inputs.verdict
    state = "pass" if verdict.passed else "fail"
    runs = f"{len(inputs.candidate)} candidate run(s)" + (
        f" against {len(inputs.reference)} reference run(s)" if inputs.reference else ""
    )
    parts = [
        f'<div class="banner {state}"><h1>{html.escape(headline(verdict))}</h1>'
        f"<p>{runs} · {sum(len(r.samples) for r in inputs.candidate)} requests · "
        f"SLO spec {html.escape(verdict.policy_source)}</p></div>",
        _cards(verdict),
    ]
    if verdict.suspects:
        parts.append(_section("Functions to look at first", _suspects(verdict)))
    elif verdict.hot_functions:
        parts.append(_section("Where the service spent its CPU", _hot_functions(verdict)))
    latency = (
        '<div class="grid">'
        + plots.latency_over_time(inputs.candidate, "ttft", "TTFT")
        + plots.latency_over_time(inputs.candidate, "e2e", "end-to-end latency")
        + "</div>"
    )
    parts.append(_section("Latency percentiles over time", latency))
    distributions = (
        '<div class="grid">'
        + plots.distribution(
            inputs.candidate, inputs.reference, "ttft", "TTFT", _threshold(inputs.policy, "ttft")
        )
        + plots.distribution(inputs.candidate, inputs.reference, "itl", "inter-token latency")
        + "</div>"
    )
    parts.append(_section("TTFT and inter-token latency distributions", distributions))
    throughput = plots.throughput_and_errors(inputs.candidate)
    if inputs.memory and inputs.memory_baseline:
        tolerances = {ALLOCATIONS: inputs.policy.allocations_tolerance, BYTES: inputs.policy.bytes_tolerance}
        memory = plots.memory_vs_baseline(inputs.memory, inputs.memory_baseline, tolerances)
        parts.append(
            _section(
                "Throughput and errors · memory per request vs baseline",
                f'<div class="grid">{throughput}{memory}</div>',
            )
        )
    else:
        parts.append(_section("Throughput and errors over time", f'<div class="single">{throughput}</div>'))
    if inputs.function_shifts:
        shares = plots.function_shares(inputs.function_shifts)
        parts.append(_section("Function-share changes", f'<div class="single">{shares}</div>'))
    if inputs.links:
        items = "".join(
            f'<li><a href="{html.escape(target)}">{html.escape(name)}</a></li>'
            for name, target in inputs.links.items()
        )
        parts.append(_section("Flame graphs and raw data", f"<ul>{items}</ul>"))
    if verdict.notes:
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in verdict.notes)
        parts.append(_section("Notes", f'<ul class="muted">{notes}</ul>'))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(inputs.title)} — {state}</title>"
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_CSS}</style></head>'
        f"<body><main>{''.join(parts)}</main></body></html>\n"
    )


def write_report(inputs: ReportInputs, directory: Path) -> Path:
    path = directory / REPORT_FILE
    path.write_text(render_report(inputs))
    return path
