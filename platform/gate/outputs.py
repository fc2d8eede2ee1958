"""Writing every form of a verdict into a directory: verdict.json, junit.xml, summary.md, report.html."""

from __future__ import annotations

import os
from pathlib import Path

from rolescope.errors import ConfigError
from rolescope.gate.collect import Collected
from rolescope.gate.judge import judge
from rolescope.gate.model import GatePolicy, Verdict
from rolescope.gate.report import ReportInputs, write_report
from rolescope.gate.summary import write_summary
from rolescope.gate.version_split import VersionChoice, name_versions, split_by_version
from rolescope.gate.writers import write_junit, write_verdict_json
from rolescope.rundir import (
    DIFF_FLAMEGRAPH_FILE,
    FLAMEGRAPH_FILE,
    LOCUST_REPORT_FILE,
    PROFILE_SPEEDSCOPE,
    REPORT_FILE,
)

# Artifacts linked from the report and the summary when present, relative to the output directory.
_LINKABLE = (
    ("flame graph", FLAMEGRAPH_FILE),
    ("speedscope profile", PROFILE_SPEEDSCOPE),
    ("differential flame graph", DIFF_FLAMEGRAPH_FILE),
    ("Locust report", LOCUST_REPORT_FILE),
)


def artifact_links(out_dir: Path, run_dirs: list[str]) -> dict[str, str]:
    """Links to flame graphs and Locust reports found under the output directory or the runs."""
    links: dict[str, str] = {}
    roots = [out_dir, *(Path(p) for p in run_dirs)]
    for root in roots:
        for label, filename in _LINKABLE:
            for found in sorted(root.glob(f"**/{filename}"))[:12]:
                target = os.path.relpath(found, out_dir)
                name = f"{label} — {Path(target).parent}" if str(Path(target).parent) != "." else label
                links.setdefault(name, target)
    return links


def judge_collected(policy: GatePolicy, collected: Collected) -> Verdict:
    verdict = judge(
        policy,
        collected.candidate,
        collected.reference or None,
        memory=collected.memory or None,
        memory_baseline=collected.memory_baseline or None,
        function_shifts=collected.function_shifts,
        capacity=collected.capacity,
    )
    verdict.notes = collected.notes + verdict.notes
    verdict.hot_functions = collected.hot_functions
    verdict.layers = collected.layers
    verdict.layer_shifts = collected.layer_shifts
    verdict.measurements = collected.measurements
    verdict.mirroring = collected.mirroring
    return verdict


def judge_versions(policy: GatePolicy, collected: Collected, choice: VersionChoice | None) -> Verdict:
    """`judge_collected`, or with a version choice the one-run A/B: the collected runs are replaced
    by the two versions' time slices (so the report plots those) and the verdict names the version."""
    if choice is None:
        return judge_collected(policy, collected)
    if collected.reference:
        raise ConfigError("--split-by-version compares versions within the runs; leave out --reference")
    split = split_by_version(collected.candidate, choice.candidate, choice.primary, choice.slices)
    collected.candidate, collected.reference = split.candidate, split.reference
    return name_versions(judge_collected(policy, collected), split)


def write_all(
    verdict: Verdict, policy: GatePolicy, collected: Collected, out_dir: Path, title: str = "rolescope gate"
) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    links = artifact_links(out_dir, verdict.candidate_runs + verdict.reference_runs)
    files = {
        "verdict": write_verdict_json(verdict, out_dir),
        "junit": write_junit(verdict, out_dir),
        "summary": write_summary(verdict, out_dir, links={"report": REPORT_FILE}),
    }
    inputs = ReportInputs(
        verdict=verdict,
        policy=policy,
        candidate=collected.candidate,
        reference=collected.reference,
        memory=collected.memory,
        memory_baseline=collected.memory_baseline,
        function_shifts=collected.function_shifts,
        links=links,
        title=title,
    )
    files["report"] = write_report(inputs, out_dir)
    return files
