"""`rolescope slo generate | validate` through the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ALERTS_DIR = Path(__file__).resolve().parents[2] / "alerts"


def rolescope(*args: str) -> subprocess.CompletedProcess[str]:
    # A wide terminal keeps Rich from wrapping the lines the assertions look for.
    return subprocess.run(
        [sys.executable, "-m", "rolescope", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_generate_writes_the_same_files_as_committed(tmp_path: Path) -> None:
    result = rolescope("slo", "generate", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for name in ("rolescope-slos.yaml", "rolescope-operational.yaml"):
        assert (tmp_path / name).read_text() == (ALERTS_DIR / "generated" / name).read_text()


def test_generate_from_a_custom_spec_names_it_in_the_header(tmp_path: Path) -> None:
    data = yaml.safe_load((ALERTS_DIR / "slo.yaml").read_text())
    data["service"] = "chatbot"
    spec = tmp_path / "mine.yaml"
    spec.write_text(yaml.safe_dump(data))
    result = rolescope("slo", "generate", "--spec", str(spec), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "out" / "rolescope-slos.yaml").read_text()
    assert "from mine.yaml. DO NOT EDIT." in text.splitlines()[0]
    assert "sloth_id: chatbot-chat-availability" in text


def test_validate_runs_promtool_and_checks_the_committed_files() -> None:
    result = rolescope("slo", "validate", "--check-generated")
    assert result.returncode == 0, result.stderr
    assert "SUCCESS: 68 rules found" in result.stdout
    assert "up to date" in result.stdout
    assert "page 14.4× 1h/5m" in result.stdout


def test_invalid_spec_exits_2_with_one_sentence_naming_the_field(tmp_path: Path) -> None:
    data = yaml.safe_load((ALERTS_DIR / "slo.yaml").read_text())
    data["slos"][2]["sli"]["latency"]["threshold"] = 4.0
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump(data))
    result = rolescope("slo", "validate", "--spec", str(spec))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "bad.yaml" in result.stderr and "slos[2].sli.latency" in result.stderr and "4 s" in result.stderr
