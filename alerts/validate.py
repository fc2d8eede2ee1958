"""Checks behind `rolescope slo validate`: promtool on fresh rules, staleness, a summary.

I/O at the edge of the rule generator: runs promtool in a temporary folder and
compares the committed files with a fresh render.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from rolescope.alerts.burn_rate import error_budget, format_duration
from rolescope.alerts.render import default_output_dir, render_rule_files, write_rule_files
from rolescope.alerts.spec import SloSpec
from rolescope.errors import ConfigError, EnvironmentProblem

PROMTOOL_TIMEOUT_S = 60


def summary_table(spec: SloSpec) -> Table:
    table = Table(title=escape(f"SLOs of service {spec.service}"))
    for column in ("SLO", "objective", "budget", "period", "SLI", "alert"):
        table.add_column(column)
    for slo in spec.slos:
        latency = slo.sli.latency
        sli = (
            f"{latency.histogram} ≤ {latency.threshold:g} s"
            if latency is not None
            else "error / total queries"
        )
        table.add_row(
            escape(slo.name),
            f"{slo.objective:g} %",
            f"{100 * error_budget(slo.objective):g} %",
            escape(slo.period),
            escape(sli),
            escape(slo.alerting.name),
        )
    windows = ", ".join(
        f"{p.severity} {p.factor(30 * 86400):g}× "
        f"{format_duration(p.long_window_s)}/{format_duration(p.short_window_s)}"
        for p in spec.window_pairs()
    )
    table.caption = f"burn-rate windows (30 d period): {windows}"
    return table


def promtool_check(spec: SloSpec) -> str:
    """Run `promtool check rules` on the rules this spec generates; its output on success."""
    binary = shutil.which("promtool")
    if binary is None:
        raise EnvironmentProblem(
            "promtool was not found on PATH; install the Debian package `prometheus` or pass --no-promtool"
        )
    with tempfile.TemporaryDirectory(prefix="rolescope-rules-") as folder:
        paths = write_rule_files(spec, Path(folder))
        result = subprocess.run(
            [binary, "check", "rules", *map(str, paths)],
            capture_output=True,
            text=True,
            timeout=PROMTOOL_TIMEOUT_S,
            check=False,
        )
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise ConfigError(f"promtool rejected the rules generated from the spec: {output}")
    return output


def check_generated_files(spec: SloSpec, folder: Path | None = None) -> None:
    """Raise when a committed rule file differs from what the spec generates now."""
    folder = folder if folder is not None else default_output_dir()
    for name, text in render_rule_files(spec).items():
        path = folder / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            raise ConfigError(f"{path} is out of date with the SLO spec; run `rolescope slo generate`")
