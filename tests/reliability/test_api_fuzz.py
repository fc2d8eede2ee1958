"""schemathesis against the service's own OpenAPI document: every check, every phase, 0 failures.

schemathesis runs from a virtual environment of its own (pinned, created once and cached under
~/.cache/rolescope-peers/, or $ROLESCOPE_PEERS_DIR), never from the project's: it brings its own
HTTP stack, and an environment's packages must not decide whether the contract holds.

Phases: examples, coverage (boundary values from the schema), fuzzing and stateful (chat →
session history through the document's OpenAPI link). Checks: all of them, the positive and
negative data checks (ST201/ST202: what the schema admits is accepted, what it refuses is refused)
and the Allow header (ST205) included. The size is bounded here; `make contract` runs it at full
size (ROLESCOPE_CONTRACT_EXAMPLES=200).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SCHEMATHESIS = "schemathesis==4.32.5"
MAX_EXAMPLES = int(os.environ.get("ROLESCOPE_CONTRACT_EXAMPLES", "50"))
SEED = os.environ.get("ROLESCOPE_CONTRACT_SEED", "9")
INSTALL_TIMEOUT_S = 600

pytestmark = pytest.mark.slow


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Parallel test runs share the cached environment: one creates it, the others wait.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def peer_environment(requirement: str) -> Path:
    """A virtual environment (no system site packages) holding only `requirement`, created once."""
    root = Path(os.environ.get("ROLESCOPE_PEERS_DIR") or Path.home() / ".cache" / "rolescope-peers")
    venv = root / requirement.replace("==", "-")
    installed = venv / "installed.txt"  # written last: a half-made environment is made again
    with _locked(root / f"{venv.name}.lock"):
        if not installed.exists() or installed.read_text() != requirement:
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
            result = subprocess.run(
                [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", requirement],
                capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False,
            )
            failed = f"pip install {requirement} into {venv} failed:\n{result.stderr[-3000:]}"
            assert result.returncode == 0, failed
            installed.write_text(requirement)
    return venv


def cases_per_operation(report: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in report.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if finished:
            recorder = finished.get("recorder", {})
            counts[f"{finished['phase']} {recorder.get('label')}"] += len(recorder.get("cases", {}))
    return counts


def test_schemathesis_all_checks_find_nothing(reliability_service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    venv = peer_environment(SCHEMATHESIS)
    service = reliability_service(ROLESCOPE_CONCURRENCY_LIMIT="0")
    reports = tmp_path / "reports"
    result = subprocess.run(
        [str(venv / "bin" / "st"), "run", f"{service.url}/openapi.json", "--checks", "all",
         "--max-examples", str(MAX_EXAMPLES), "--seed", SEED, "--generation-database", "none",
         "--workers", "1", "--no-color", "--request-timeout", "30",
         "--report", "ndjson", "--report-dir", str(reports)],
        # schemathesis keeps a `.schemathesis/` cache in its working directory: keep it out of the tree.
        capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path,
    )
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary
    assert "No issues found" in summary, summary
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in summary, summary
    assert "API Links:    1 covered" in result.stdout, summary
    counts = cases_per_operation(next(reports.glob("*.ndjson")))
    print(dict(counts))
    # Operations with inputs are exercised at full size; the chat → history chain ran statefully.
    with_inputs = ("fuzzing GET /v1/chat", "fuzzing POST /v1/chat", "fuzzing POST /v1/chat/completions",
                   "fuzzing GET /v1/sessions/{session_id}")
    for operation in with_inputs:
        assert counts[operation] >= MAX_EXAMPLES, counts
    assert counts["stateful Stateful tests"] > 0, counts
