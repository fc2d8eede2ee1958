"""Golden files, promtool and amtool: the committed rules are what the spec generates, and they work.

Rewrite the golden files with `make golden` (or `rolescope slo generate`).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from rolescope.alerts.render import render_rule_files, write_rule_files
from rolescope.alerts.spec import load_slo_spec
from rolescope.alerts.validate import check_generated_files
from rolescope.errors import ConfigError

ALERTS_DIR = Path(__file__).resolve().parents[2] / "alerts"
GENERATED = ALERTS_DIR / "generated"
PROMTOOL_TESTS = sorted((ALERTS_DIR / "tests").glob("*.test.yaml"))


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make system-deps`")
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def test_committed_rules_match_the_generator() -> None:
    for name, text in render_rule_files(load_slo_spec()).items():
        committed = (GENERATED / name).read_text(encoding="utf-8")
        assert committed == text, f"{name} is stale: run `make golden`"


def test_generated_files_say_do_not_edit() -> None:
    for name, text in render_rule_files(load_slo_spec()).items():
        assert text.splitlines()[0].endswith("DO NOT EDIT."), name


def test_staleness_check_notices_a_hand_edit(tmp_path: Path) -> None:
    spec = load_slo_spec()
    write_rule_files(spec, tmp_path)
    check_generated_files(spec, tmp_path)
    edited = tmp_path / "rolescope-slos.yaml"
    edited.write_text(edited.read_text().replace("14.4", "15"))
    with pytest.raises(ConfigError, match=r"rolescope-slos\.yaml is out of date"):
        check_generated_files(spec, tmp_path)


def test_promtool_check_rules_is_clean() -> None:
    result = run(tool("promtool"), "check", "rules", *map(str, sorted(GENERATED.glob("*.yaml"))))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 68 rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = run(tool("promtool"), "test", "rules", *map(str, PROMTOOL_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_fail_when_an_alert_breaks(tmp_path: Path) -> None:
    # The unit tests must be able to fail: a page factor changed from 14.4 to 144 stops the page case firing.
    (tmp_path / "generated").mkdir()
    (tmp_path / "tests").mkdir()
    text = (
        (GENERATED / "rolescope-slos.yaml")
        .read_text()
        .replace("(14.4 *", "(144 *")
        .replace("(6.0 *", "(600 *")
    )
    (tmp_path / "generated" / "rolescope-slos.yaml").write_text(text)
    unit = yaml.safe_load((ALERTS_DIR / "tests" / "rolescope-slos.test.yaml").read_text())
    unit["tests"] = unit["tests"][:1]  # the chat-availability page case is enough, and fast
    (tmp_path / "tests" / "page.test.yaml").write_text(yaml.safe_dump(unit))
    result = run(tool("promtool"), "test", "rules", str(tmp_path / "tests" / "page.test.yaml"))
    assert result.returncode != 0
    assert 'sloth_severity="page"' in result.stdout + result.stderr


def _alert_cases() -> dict[str, dict[str, int]]:
    """alert name → {"firing": n, "quiet": n} over every promtool test file."""
    cases: dict[str, dict[str, int]] = {}
    for path in PROMTOOL_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for check in test.get("alert_rule_test", []):
                entry = cases.setdefault(check["alertname"], {"firing": 0, "quiet": 0})
                expected: list[dict[str, Any]] = check.get("exp_alerts") or []
                if expected:
                    assert all(e.get("exp_labels") and e.get("exp_annotations") for e in expected), test[
                        "name"
                    ]
                entry["firing" if expected else "quiet"] += 1
    return cases


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    alerts = set()
    severities: dict[str, set[str]] = {}
    for path in GENERATED.glob("*.yaml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    alerts.add(rule["alert"])
                    severities.setdefault(rule["alert"], set()).add(rule["labels"]["severity"])
    cases = _alert_cases()
    for alert in sorted(alerts):
        assert cases.get(alert, {}).get("firing", 0) >= 1, f"{alert} has no firing case"
        assert cases.get(alert, {}).get("quiet", 0) >= 1, f"{alert} has no quiet case"
    # Page and ticket variants of each SLO alert are both exercised.
    fired = set()
    for path in PROMTOOL_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for check in test.get("alert_rule_test", []):
                for expected in check.get("exp_alerts") or []:
                    fired.add((check["alertname"], expected["exp_labels"]["severity"]))
    for alert, levels in severities.items():
        for level in levels:
            assert (alert, level) in fired, f"{alert} ({level}) never fires in a unit test"


def test_alertmanager_example_is_valid_and_routes_page_and_ticket_apart() -> None:
    config = str(ALERTS_DIR / "alertmanager.example.yml")
    amtool = tool("amtool")
    checked = run(amtool, "check-config", config)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    page = run(amtool, "config", "routes", "test", f"--config.file={config}", "severity=page")
    ticket = run(amtool, "config", "routes", "test", f"--config.file={config}", "severity=ticket")
    assert page.stdout.strip() == "pager"
    assert ticket.stdout.strip() == "ticket-queue"
