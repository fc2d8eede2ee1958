"""What does recording the period SLI from 5m ratios (Sloth's way) save? Measured side by side in one run.

The period window (30 d) could be recorded as a `rate()` over the raw counters
or, as the generator does, as the average of the already recorded 5m ratios.
Both rule files are evaluated by `promtool test rules` over the same synthetic
counters (several roles and status classes, one sample a minute for days),
alternating, with a third file holding only the 5m rule (the fixed cost of
loading the data). Figures: whole-run time ratios; raw / averaged above 1 means
the generated rule is cheaper, averaged / none near 1 means it costs almost
nothing.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from rolescope.alerts.rules import sli_error_query
from rolescope.alerts.spec import load_slo_spec
from rolescope.exporters import names

ROLES = ("sherlock", "curie", "ada", "holmes")
STATUS = ("2xx", "4xx", "5xx")


def _rule_file(period_expr: str | None, slo_window: str = "5m") -> dict[str, object]:
    spec = load_slo_spec()
    slo = spec.slo("chat-availability")
    rules: list[dict[str, object]] = [
        {"record": f"slo:sli_error:ratio_rate{slo_window}", "expr": sli_error_query(slo, slo_window)}
    ]
    if period_expr is not None:
        rules.append({"record": "slo:sli_error:ratio_rate30d", "expr": period_expr})
    return {"groups": [{"name": "bench", "rules": rules}]}


def _unit_test(rule_file: str, minutes: int) -> dict[str, object]:
    series = []
    for role in ROLES:
        for status in STATUS:
            step = {"2xx": 97, "4xx": 2, "5xx": 1}[status]
            labels = f'route="/v1/chat", method="POST", role="{role}", status_class="{status}"'
            series.append(
                {"series": f"{names.HTTP_REQUESTS_TOTAL}{{{labels}}}", "values": f"0+{step}x{minutes}"}
            )
    return {
        "rule_files": [rule_file],
        "evaluation_interval": "5m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": "count(slo:sli_error:ratio_rate5m) >= 0",
                        "eval_time": f"{minutes}m",
                        "exp_samples": [{"labels": "{}", "value": 1}],
                    }
                ],
            }
        ],
    }


def _time_promtool(promtool: str, test_file: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=600, check=False
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"promtool failed on {test_file.name}: {result.stdout}{result.stderr}")
    return elapsed


def run(quick: bool = False) -> dict[str, float]:
    promtool = shutil.which("promtool")
    if promtool is None:
        raise RuntimeError("promtool is not installed (Debian package prometheus)")
    days = 1 if quick else 4
    repeats = 3 if quick else 5
    minutes = days * 24 * 60
    slo = load_slo_spec().slo("chat-availability")
    base = "slo:sli_error:ratio_rate5m"
    variants = {
        "fixed": None,
        "averaged": f"sum_over_time({base}[30d]) / count_over_time({base}[30d])",
        "raw": sli_error_query(slo, "30d"),
    }
    timings: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="rolescope-bench-rules-") as folder:
        root = Path(folder)
        for name, expr in variants.items():
            (root / f"{name}.rules.yaml").write_text(yaml.safe_dump(_rule_file(expr)))
            (root / f"{name}.test.yaml").write_text(yaml.safe_dump(_unit_test(f"{name}.rules.yaml", minutes)))
        for _ in range(repeats):
            for name in variants:  # alternate, so drift on a shared machine hits all three alike
                timings[name].append(_time_promtool(promtool, root / f"{name}.test.yaml"))
    fixed, averaged, raw = (statistics.median(timings[n]) for n in ("fixed", "averaged", "raw"))
    figures = {
        "raw_over_averaged": round(raw / averaged, 2),
        "averaged_over_no_period_rule": round(averaged / fixed, 2),
        "raw_over_no_period_rule": round(raw / fixed, 2),
        "days_of_data": float(days),
    }
    print(
        f"period SLI over {days} d of 1-min data, {len(ROLES) * len(STATUS)} counters, "
        f"evaluated every 5m (promtool wall time, median of {repeats}):"
    )
    print(f"  rate() over raw counters / average of 5m ratios: {figures['raw_over_averaged']}x")
    print(f"  average of 5m ratios / no period rule at all:    {figures['averaged_over_no_period_rule']}x")
    print(f"  rate() over raw counters / no period rule at all: {figures['raw_over_no_period_rule']}x")
    return figures


if __name__ == "__main__":
    run()
