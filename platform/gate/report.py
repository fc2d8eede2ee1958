"""`report.html`: one self-contained page — verdict banner, checks, then the plots behind them.

The page is a jinja2 template (`report.html.j2`, package data beside this module) with autoescaping on, so
check names, messages, function names and links can never inject markup; the plots are
the only pre-rendered HTML and come from matplotlib's SVG writer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import jinja2
from markupsafe import Markup

from rolescope.gate import plots
from rolescope.gate.judge import headline
from rolescope.gate.memory_check import ALLOCATIONS, BYTES
from rolescope.gate.mirroring import OUTCOME_TITLES
from rolescope.gate.model import CheckResult, FunctionShift, GatePolicy, RunData, Verdict
from rolescope.profiling.layers import short_function
from rolescope.rundir import REPORT_FILE

TEMPLATE = "report.html.j2"
TEMPLATE_DIR = Path(__file__).parent


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


@dataclass(frozen=True, slots=True)
class Card:
    """One check as the report shows it: badge, figure, message and how much allowance is used."""

    passed: bool
    name: str
    description: str
    figure: str
    message: str
    bar_width: float  # percent of the allowance used, 0–100
    bar_colour: str


def _figure_text(check: CheckResult) -> str:
    if math.isinf(check.figure):
        return "+∞ %"
    if check.kind == "capacity":
        return f"{check.figure:.3g} req/s (≥ {check.limit:.3g})"
    if check.kind == "slo":
        return f"{100 * check.figure:.2f} %"
    if check.unit == "absolute" and not check.statistics.get("figure_unit"):
        return f"{100 * check.figure:+.2f} pp"
    return f"{100 * check.figure:+.1f} %"


def allowance_used(check: CheckResult) -> float:
    """How much of the allowance the figure uses, 0–1 (1 once over the limit)."""
    if check.kind == "capacity":
        # Rates, not shares: the allowance is the whole way down from the limit to zero.
        return 1.0 if not check.passed else (check.limit / check.figure if check.figure > 0 else 0.0)
    if check.direction == "min":
        budget = 1 - check.limit
        used = (1 - check.figure) / budget if budget > 0 else 0.0
    else:
        used = check.figure / check.limit if check.limit > 0 else (0.0 if check.figure <= 0 else 2.0)
    return 0.0 if math.isnan(used) else max(0.0, min(used, 1.0))


def card(check: CheckResult) -> Card:
    used = allowance_used(check)
    colour = "#dc2626" if not check.passed else "#f59e0b" if used > 0.75 else "#16a34a"
    return Card(
        check.passed, check.name, check.description, _figure_text(check), check.message, 100 * used, colour
    )


def _threshold(policy: GatePolicy, metric: str) -> float | None:
    return next((o.threshold_s for o in policy.objectives if o.metric == metric), None)


def _plots(inputs: ReportInputs) -> dict[str, Markup]:
    """The SVG figures, marked safe: matplotlib escapes the text it writes into them."""
    candidate, reference = inputs.candidate, inputs.reference
    figures = {
        "ttft_over_time": plots.latency_over_time(candidate, "ttft", "TTFT"),
        "e2e_over_time": plots.latency_over_time(candidate, "e2e", "end-to-end latency"),
        "ttft_distribution": plots.distribution(
            candidate, reference, "ttft", "TTFT", _threshold(inputs.policy, "ttft")
        ),
        "itl_distribution": plots.distribution(candidate, reference, "itl", "inter-token latency"),
        "throughput": plots.throughput_and_errors(candidate),
        "memory": "",
        "function_shares": "",
    }
    if inputs.memory and inputs.memory_baseline:
        tolerances = {ALLOCATIONS: inputs.policy.allocations_tolerance, BYTES: inputs.policy.bytes_tolerance}
        figures["memory"] = plots.memory_vs_baseline(inputs.memory, inputs.memory_baseline, tolerances)
    if inputs.function_shifts:
        figures["function_shares"] = plots.function_shares(inputs.function_shifts)
    return {name: Markup(svg) for name, svg in figures.items()}


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_report(inputs: ReportInputs) -> str:
    verdict = inputs.verdict
    runs = f"{len(inputs.candidate)} candidate run(s)" + (
        f" against {len(inputs.reference)} reference run(s)" if inputs.reference else ""
    )
    widest = max(verdict.hot_functions[0][1], 1e-9) if verdict.hot_functions else 1.0
    template = _environment().get_template(TEMPLATE)
    return template.render(
        title=inputs.title,
        state="pass" if verdict.passed else "fail",
        headline=headline(verdict),
        runs=runs,
        requests=sum(len(r.samples) for r in inputs.candidate),
        policy_source=verdict.policy_source,
        cards=[card(check) for check in sorted(verdict.checks, key=lambda c: c.passed)],
        layers=verdict.layers,
        layer_shifts=verdict.layer_shifts,
        short_function=short_function,
        suspects=verdict.suspects,
        hot_functions=[
            (name, share, min(100.0, 100 * share / widest)) for name, share in verdict.hot_functions
        ],
        plots=_plots(inputs),
        links=inputs.links,
        notes=verdict.notes,
        measurements=verdict.measurements,
        mirroring=verdict.mirroring,
        mirror_outcomes=[(title, verdict.mirroring.counts.get(outcome, 0))
                         for outcome, title in OUTCOME_TITLES.items()] if verdict.mirroring else [],
    )


def write_report(inputs: ReportInputs, directory: Path) -> Path:
    path = directory / REPORT_FILE
    path.write_text(render_report(inputs))
    return path
