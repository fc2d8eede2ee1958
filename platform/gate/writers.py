"""The verdict's machine-readable forms: `verdict.json` and `junit.xml`."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rolescope.gate.coverage import measurement_to_dict
from rolescope.gate.judge import headline
from rolescope.gate.model import CheckResult, Verdict
from rolescope.rundir import JUNIT_FILE, VERDICT_FILE


def json_safe(value: Any) -> Any:
    """NaN and infinities become null: JSON has neither, and strict parsers reject them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def check_to_dict(check: CheckResult) -> dict[str, Any]:
    return {
        "name": check.name,
        "kind": check.kind,
        "passed": check.passed,
        "description": check.description,
        "figure": check.figure,
        "limit": check.limit,
        "margin": check.margin,
        "direction": check.direction,
        "unit": check.unit,
        "message": check.message,
        "statistics": check.statistics,
    }


def verdict_to_dict(verdict: Verdict) -> dict[str, Any]:
    data: dict[str, Any] = json_safe(
        {
            "verdict": "pass" if verdict.passed else "fail",
            "passed": verdict.passed,
            "headline": headline(verdict),
            "failed": [check.name for check in verdict.failed],
            "checks": [check_to_dict(check) for check in verdict.checks],
            "suspects": [
                {
                    "function": s.function,
                    "reference_share": s.reference_share,
                    "candidate_share": s.candidate_share,
                    "delta": s.delta,
                }
                for s in verdict.suspects
            ],
            "hot_functions": [{"function": f, "self_share": share} for f, share in verdict.hot_functions],
            "layers": [row.to_dict() for row in verdict.layers],
            "layer_shifts": [asdict(change) for change in verdict.layer_shifts],
            "candidate_runs": verdict.candidate_runs,
            "reference_runs": verdict.reference_runs,
            "policy": verdict.policy_source,
            "notes": verdict.notes,
            "measurements": [measurement_to_dict(m) for m in verdict.measurements],
        }
    )
    if verdict.mirroring is not None:  # absent, not null, when mirroring did not run
        data["mirroring"] = json_safe(verdict.mirroring.as_dict())
    return data


def write_verdict_json(verdict: Verdict, directory: Path) -> Path:
    path = directory / VERDICT_FILE
    path.write_text(json.dumps(verdict_to_dict(verdict), indent=2, allow_nan=False) + "\n")
    return path


def junit_xml(verdict: Verdict) -> str:
    """One test case per check, grouped in one suite per check kind, so any CI lists them."""
    root = ET.Element("testsuites", name="rolescope gate", tests=str(len(verdict.checks)))
    root.set("failures", str(len(verdict.failed)))
    for kind in ("slo", "relative", "memory", "capacity"):
        checks = [c for c in verdict.checks if c.kind == kind]
        if not checks:
            continue
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"rolescope.gate.{kind}",
            tests=str(len(checks)),
            failures=str(sum(1 for c in checks if not c.passed)),
            errors="0",
            skipped="0",
        )
        for check in checks:
            case = ET.SubElement(
                suite, "testcase", classname=f"rolescope.gate.{kind}", name=check.name, time="0"
            )
            if not check.passed:
                failure = ET.SubElement(case, "failure", message=check.message, type="GateFailed")
                failure.text = f"{check.description}\nfigure={check.figure:.6g} limit={check.limit:.6g}"
            out = ET.SubElement(case, "system-out")
            out.text = check.message
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(verdict: Verdict, directory: Path) -> Path:
    path = directory / JUNIT_FILE
    path.write_text(junit_xml(verdict))
    return path
