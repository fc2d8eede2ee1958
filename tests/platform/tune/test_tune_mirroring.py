"""`rolescope tune` on roles that mirror to a candidate version: the report gets a mirroring section.

A real tune run (one short load run, no profile, no memray) whose sherlock 1.2 mirrors every
exchange to sherlock 1.1, a version that answers shorter and with another catchphrase.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml
from markupsafe import escape

from rolescope.gate.mirroring import MirroringSection, summary_lines
from rolescope.rundir import MIRROR_PAIRS_FILE, MIRRORING_FILE
from rolescope.settings import bundled_roles_path
from rolescope.tune.mirroring import record_mirroring

NEW_CATCHPHRASE = "Elementary arithmetic, Watson."


def mirroring_roles(folder: Path) -> Path:
    folder.mkdir()
    for source in sorted(bundled_roles_path().glob("*.yaml")):
        document = yaml.safe_load(source.read_text())
        document["inference"]["simulator"].update(ttft_ms=5, tokens_per_second=5000)
        if document["name"] == "sherlock":
            document["mirror"] = {"to": "sherlock@1.1", "share": 1.0, "max_concurrency": 64}
        (folder / source.name).write_text(yaml.safe_dump(document))
    candidate = yaml.safe_load((folder / "sherlock.yaml").read_text())
    candidate.pop("mirror")
    candidate["version"] = "1.1"  # below 1.2, which stays the default
    candidate["persona"]["catchphrases"] = [NEW_CATCHPHRASE]
    candidate["response_constraints"]["max_tokens"] = 12
    (folder / "sherlock-1.1.yaml").write_text(yaml.safe_dump(candidate))
    return folder


def test_a_tune_run_that_mirrors_reports_the_mirror_counts_and_the_diff_of_its_pairs(tmp_path: Path) -> None:
    out = tmp_path / "tune"
    command = [
        sys.executable, "-m", "rolescope", "tune", "--quick", "--out", str(out),
        "--runs", "1", "--duration", "6", "--users", "8", "--speed", "20",
        "--roles", str(mirroring_roles(tmp_path / "roles")), "--no-profile", "--no-memory",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-3000:]

    section = json.loads((out / MIRRORING_FILE).read_text())
    counts = section["counts"]
    assert counts["ok"] > 0 and set(counts) == {"ok", "shed", "failed", "timeout"}
    assert section["targets"] == ["sherlock@1.1"]
    pairs = (out / MIRROR_PAIRS_FILE).read_text().splitlines()
    # Warm-up mirrors are left out of the diff; the load runs' are all there.
    assert section["diff"]["pairs"] <= len(pairs) and section["diff"]["pairs"] >= counts["ok"] * 0.9
    changed = {f["field"]: f for f in section["diff"]["fields"] if f["beyond_noise"] > 0}
    assert "output_tokens" in changed  # 1.1 answers in at most 12 tokens
    # Cut at 12 tokens, 1.1's replies lose the catchphrases 1.2's carry: examples show which.
    assert "catchphrases" in changed
    example = changed["catchphrases"]["examples"][0]
    assert example["primary"] != example["candidate"]

    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["mirroring"]["counts"] == counts
    summary = (out / "summary.md").read_text()
    assert "### Shadow mirroring" in summary and f"mirrored {counts['ok']}" in summary
    assert "`output_tokens`" in summary
    report = (out / "report.html").read_text()
    assert "<h2>Shadow mirroring</h2>" in report and "<code>sherlock@1.1</code>" in report
    assert f"primary “{escape(example['primary'])}”" in report


def test_a_run_that_mirrored_nothing_gets_no_section_and_keeps_no_empty_pairs_file(tmp_path: Path) -> None:
    (tmp_path / MIRROR_PAIRS_FILE).write_text("")
    idle = {"ok": 3.0, "shed": 0.0, "failed": 0.0, "timeout": 0.0}  # warm-up mirrors only
    assert record_mirroring(tmp_path, idle, idle, time.time(), None, 0.05) is None
    assert not (tmp_path / MIRRORING_FILE).exists() and not (tmp_path / MIRROR_PAIRS_FILE).exists()


def test_a_mirror_that_only_shed_or_failed_is_reported_without_a_diff(tmp_path: Path) -> None:
    before = {"ok": 0.0, "shed": 0.0, "failed": 0.0, "timeout": 0.0}
    after = {"ok": 0.0, "shed": 7.0, "failed": 2.0, "timeout": 1.0}
    section = record_mirroring(tmp_path, before, after, time.time(), None, 0.05)
    assert section is not None and section.diff is None
    assert section.counts == {"ok": 0, "shed": 7, "failed": 2, "timeout": 1}
    text = "\n".join(summary_lines(section))
    assert "mirrored 0, shed 7, failed 2, timed out 1" in text and "no diff" in text
    again = MirroringSection.from_dict(json.loads((tmp_path / MIRRORING_FILE).read_text()))
    assert again == section
