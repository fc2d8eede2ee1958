"""schemathesis against the service's own OpenAPI document: every default check, 0 failures.

Phases: examples, fuzzing (up to 100 cases per operation) and stateful (chat → session history
through the document's OpenAPI links). The coverage phase is left out: on this Python build its
schema walker crashes inside Hypothesis' lambda introspection ("AST constructor recursion depth
mismatch"), a tool problem rather than a finding about the service.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

MAX_EXAMPLES = 100
# One documented exception: the OpenAI-compatible route accepts the OpenAI request schema, which
# cannot express "the last message is a non-empty user message"; such requests get a clean 422.
CONFIG = """
[[operations]]
include-path = "/v1/chat/completions"
checks.positive_data_acceptance.enabled = false
"""
# urllib3-future (pulled in by niquests) replaces urllib3's pool container, which schemathesis'
# requests transport counts connections through; the count only tunes a retry, so stub it.
_CLI = (
    "import sys, schemathesis.transport.requests as transport; "
    "transport._count_opened_connections = lambda session: 0; "
    "from schemathesis.cli import schemathesis; sys.argv[0] = 'schemathesis'; sys.exit(schemathesis())"
)


def cases_per_operation(report: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in report.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished:
            recorder = finished.get("recorder", {})
            counts[f"{finished['phase']} {recorder.get('label')}"] += len(recorder.get("cases", {}))
    return counts


def test_schemathesis_finds_nothing(reliability_service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service = reliability_service(ROLESCOPE_CONCURRENCY_LIMIT="0")
    reports = tmp_path / "reports"
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    result = subprocess.run(
        [sys.executable, "-c", _CLI, "--config-file", str(config), "run", f"{service.url}/openapi.json",
         "--max-examples", str(MAX_EXAMPLES), "--phases", "examples,fuzzing,stateful",
         "--seed", "9", "--generation-database", "none", "--workers", "1", "--no-color",
         "--request-timeout", "30", "--report", "ndjson", "--report-dir", str(reports)],
        # schemathesis keeps a `.schemathesis/` cache in its working directory: keep it out of the tree.
        capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path,
    )
    summary = result.stdout[-4000:]
    assert result.returncode == 0, summary
    assert "Stateful" in summary and "passed" in summary, summary
    counts = cases_per_operation(next(reports.glob("*.ndjson")))
    print(dict(counts))
    # Operations with inputs are exercised at full size; the chat → history chain ran statefully.
    with_inputs = ("fuzzing GET /v1/chat", "fuzzing POST /v1/chat", "fuzzing GET /v1/sessions/{session_id}")
    for operation in with_inputs:
        assert counts[operation] >= MAX_EXAMPLES, counts
    assert counts["stateful Stateful tests"] > 0, counts
