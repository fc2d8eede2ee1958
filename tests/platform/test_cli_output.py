"""The CLI prints error text and user-supplied names verbatim: brackets are text, never Rich markup."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from rich.console import Console

from rolescope.gate.console import print_verdict
from rolescope.gate.model import CheckResult, FunctionShift, Verdict
from rolescope.loadtests.traffic_format import default_traffic_path
from rolescope.settings import bundled_roles_path


def _rolescope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rolescope", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "400"},  # long temporary paths stay on one line
    )


def test_a_role_error_quoting_a_pattern_prints_the_pattern_and_every_problem(tmp_path: Path) -> None:
    document = yaml.safe_load((bundled_roles_path() / "sherlock.yaml").read_text())
    document["name"] = "Sherlock [the] Detective"
    document["persona"]["traits"] = "observant"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document))

    result = _rolescope("serve", "--config", str(path), "--port", "0", "--db", str(tmp_path / "x.db"))

    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == f"error: {path}: 2 problems:"
    assert lines[1] == (
        "  - field `name`: expected to match pattern '^[a-z][a-z0-9_-]{0,62}$'; "
        "got 'Sherlock [the] Detective'"
    )
    assert lines[2] == "  - field `persona.traits`: expected a list; got 'observant'"


def test_a_file_name_with_brackets_is_printed_as_written(tmp_path: Path) -> None:
    traffic = tmp_path / "capture[red]x.jsonl"
    shutil.copy(default_traffic_path(), traffic)
    result = _rolescope("traffic", "inspect", str(traffic))
    assert result.returncode == 0, result.stderr
    assert str(traffic) in result.stdout

    missing = tmp_path / "gone[bold]{0,2}.jsonl"
    refused = _rolescope("traffic", "inspect", str(missing))
    assert refused.returncode == 2
    assert str(missing) in refused.stderr


def test_the_verdict_table_shows_check_messages_and_functions_verbatim() -> None:
    check = CheckResult(
        name="ttft[p99]",
        kind="slo",
        description="",
        figure=0.5,
        limit=0.9,
        direction="min",
        passed=False,
        message="route [bold]/v1/chat[/] matched ^[a-z]{0,62}$",
    )
    verdict = Verdict(
        checks=[check],
        suspects=[FunctionShift("render[int] (app.py:3)", 0.1, 0.4)],
        notes=["window [5m] was short"],
    )
    console = Console(record=True, width=400)
    print_verdict(console, verdict)
    text = console.export_text()
    assert "ttft[p99]" in text
    assert "route [bold]/v1/chat[/] matched ^[a-z]{0,62}$" in text
    assert "render[int] (app.py:3)" in text
    assert "window [5m] was short" in text
