"""`summary.md`: a pull-request comment — the verdict first, then the tables behind it."""

from __future__ import annotations

import math
from pathlib import Path

from rolescope.gate.judge import headline
from rolescope.gate.mirroring import summary_lines
from rolescope.gate.model import CheckResult, Verdict
from rolescope.profiling.layers import short_function
from rolescope.rundir import SUMMARY_FILE


def _mark(check: CheckResult) -> str:
    return "✅" if check.passed else "❌"


def _percent(value: float, signed: bool = False) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "+∞ %" if value > 0 else "−∞ %"
    return f"{100 * value:+.2f} %" if signed else f"{100 * value:.2f} %"


def _slo_rows(checks: list[CheckResult]) -> list[str]:
    rows = ["| | SLO | objective | measured | margin |", "|---|---|---|---|---|"]
    for c in checks:
        rows.append(
            f"| {_mark(c)} | `{c.name}` — {c.description} | {_percent(c.limit)} | {_percent(c.figure)} "
            f"| {_percent(c.margin, signed=True)} |"
        )
    return rows


def _relative_rows(checks: list[CheckResult]) -> list[str]:
    rows = [
        "| | figure | reference | candidate | worse by | tolerance | p (Holm) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in checks:
        s = c.statistics
        unit = s.get("figure_unit", "")
        absolute = c.unit == "absolute"
        change = f"{100 * c.figure:+.2f} pp" if absolute and unit == "" else _percent(c.figure, True)
        limit = f"{100 * c.limit:+.2f} pp" if absolute and unit == "" else _percent(c.limit, True)
        rows.append(
            f"| {_mark(c)} | `{c.name}` | {_fmt(s.get('reference_median'), unit)} "
            f"| {_fmt(s.get('candidate_median'), unit)} | {change} | {limit} "
            f"| {s.get('p_adjusted', 1.0):.3g} |"
        )
    return rows


def _fmt(value: object, unit: str) -> str:
    if not isinstance(value, int | float) or math.isnan(value):
        return "n/a"
    if unit == "s":
        return f"{1000 * value:.1f} ms"
    if unit == "":
        return _percent(float(value))
    return f"{value:.4g} {unit}"


def _memory_rows(checks: list[CheckResult]) -> list[str]:
    rows = ["| | figure | baseline | measured | change | tolerance |", "|---|---|---|---|---|---|"]
    for c in checks:
        s = c.statistics
        rows.append(
            f"| {_mark(c)} | `{c.name.removeprefix('memory:')}` "
            f"| {s['baseline']:,.1f} | {s['candidate']:,.1f} "
            f"| {_percent(c.figure, True)} | {_percent(c.limit, True)} |"
        )
    return rows


def _capacity_rows(checks: list[CheckResult]) -> list[str]:
    rows = ["| | side | rate found | bracket | tolerance |", "|---|---|---|---|---|"]
    for c in checks:
        for side in ("reference", "candidate"):
            found = c.statistics[side]
            low, high = (f"{v:.3g}" if v is not None else "—" for v in (found["low"], found["high"]))
            rate = f"{found['rate_rps']:.3g} req/s" if found["rate_rps"] is not None else "none held"
            mark = _mark(c) if side == "candidate" else ""
            rows.append(f"| {mark} | {side} | {rate} | [{low}, {high}] | −{c.statistics['drop_pct']:g} % |")
    return rows


def _layer_rows(verdict: Verdict) -> list[str]:
    """The candidate's CPU by layer, each with the functions that took most of it."""
    rows = ["| layer | share of CPU samples | top functions within it |", "|---|---|---|"]
    for layer in verdict.layers:
        tops = ", ".join(f"`{short_function(f)}` {_percent(s)}" for f, s in layer.top_functions)
        rows.append(f"| {layer.layer} | {_percent(layer.share)} | {tops} |")
    return rows


def _layer_shift_rows(verdict: Verdict) -> list[str]:
    """Each layer's share, reference vs candidate, and the function within it that moved most."""
    rows = [
        "| | layer | reference | candidate | change | moved most within it |",
        "|---|---|---|---|---|---|",
    ]
    for change in verdict.layer_shifts:
        mark = ("⬆️" if change.direction == "grew" else "⬇️") if change.significant else ""
        within = ""
        if change.function:
            within = f"`{short_function(change.function)}` {100 * change.function_delta:+.2f} pp"
        rows.append(
            f"| {mark} | {change.layer} | {_percent(change.baseline_share)} "
            f"| {_percent(change.candidate_share)} | {100 * change.delta:+.2f} pp | {within} |"
        )
    return rows


def _profile_sections(verdict: Verdict) -> list[str]:
    """Layers first (what part of the service), then the functions (what to change)."""
    lines: list[str] = []
    if verdict.layer_shifts:
        lines += ["### Layers whose share of CPU samples changed (⬆️ grew, ⬇️ shrank, tested)", ""]
        lines += [*_layer_shift_rows(verdict), ""]
    elif verdict.layers:
        lines += ["### Where the service spent its CPU, by layer", ""]
        lines += [*_layer_rows(verdict), ""]
    if verdict.suspects:
        lines += ["### Functions to look at first (share of CPU samples that grew)", ""]
        lines += ["| function | reference | candidate | change |", "|---|---|---|---|"]
        for s in verdict.suspects:
            lines.append(
                f"| `{s.function}` | {_percent(s.reference_share)} | {_percent(s.candidate_share)} "
                f"| {100 * s.delta:+.2f} pp |"
            )
        lines.append("")
    elif verdict.hot_functions:
        lines += ["### Where the service spent its CPU, by function (no reference to compare with)", ""]
        lines += ["| function | share of CPU samples |", "|---|---|"]
        lines += [f"| `{name}` | {_percent(share)} |" for name, share in verdict.hot_functions[:5]]
        lines.append("")
    return lines


def _measured_section(verdict: Verdict) -> list[str]:
    """What was and was not measured: a check that could not be taken is neither a pass nor a fail."""
    if not verdict.measurements:
        return []
    lines = ["### Measured / not measured (why)", ""]
    for item in verdict.measurements:
        state = "measured" if item.measured else "**not measured**"
        lines.append(f"- {item.what}: {state} — {item.detail}")
    lines.append("- client-side SLIs, SLO checks and goodput: measured — from every request of every run")
    return [*lines, ""]


def render_summary(verdict: Verdict, links: dict[str, str] | None = None) -> str:
    icon = "✅" if verdict.passed else "❌"
    lines = [f"## {icon} rolescope gate: {headline(verdict)}", ""]
    for check in verdict.failed:
        lines.append(f"- **{check.name}**: {check.message}")
    if verdict.failed:
        lines.append("")
    sections = (
        ("SLIs vs SLOs", "slo", _slo_rows),
        ("Candidate vs reference (A/B across runs)", "relative", _relative_rows),
        ("Memory vs baseline", "memory", _memory_rows),
        ("Capacity vs reference (rate where every SLO holds, req/s)", "capacity", _capacity_rows),
    )
    for title, kind, rows in sections:
        checks = [c for c in verdict.checks if c.kind == kind]
        if checks:
            lines += [f"### {title}", "", *rows(checks), ""]
    lines += _profile_sections(verdict)
    lines += _measured_section(verdict)
    if verdict.mirroring is not None:
        lines += summary_lines(verdict.mirroring)
    if verdict.notes:
        lines += ["### Notes", "", *[f"- {note}" for note in verdict.notes], ""]
    runs = f"{len(verdict.candidate_runs)} candidate run(s)"
    if verdict.reference_runs:
        runs += f", {len(verdict.reference_runs)} reference run(s)"
    footer = f"<sub>{runs}; SLO spec: {verdict.policy_source}"
    if links:
        footer += "; " + " · ".join(f"[{name}]({target})" for name, target in links.items())
    lines.append(footer + "</sub>")
    return "\n".join(lines) + "\n"


def write_summary(verdict: Verdict, directory: Path, links: dict[str, str] | None = None) -> Path:
    path = directory / SUMMARY_FILE
    path.write_text(render_summary(verdict, links))
    return path
