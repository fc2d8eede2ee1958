"""The generated rules on a real Prometheus scraping a real role service under a short load."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import yaml

from rolescope.alerts.render import write_rule_files
from rolescope.alerts.spec import load_slo_spec, parse_slo_spec

ALERTS_DIR = Path(__file__).resolve().parents[2] / "alerts"
SPEC_WINDOWS = {
    # The workbook table shrunk so a test sees the page alert within seconds (scrapes every second).
    "page": {
        "quick": {"error_budget_percent": 2, "short_window": "5s", "long_window": "10s"},
        "slow": {"error_budget_percent": 5, "short_window": "10s", "long_window": "20s"},
    },
    "ticket": {
        "quick": {"error_budget_percent": 10, "short_window": "10s", "long_window": "30s"},
        "slow": {"error_budget_percent": 10, "short_window": "20s", "long_window": "1m"},
    },
}


def recording_rules(folder: Path) -> list[dict[str, Any]]:
    rules = []
    for path in sorted(folder.glob("*.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [r for r in group["rules"] if "record" in r]
    return rules


def rule_key(rule: dict[str, Any]) -> tuple[str, str, str]:
    labels = rule.get("labels", {})
    return rule["record"], labels.get("sloth_id", ""), labels.get("sloth_window", "")


def finite_recorded(prom: Any) -> set[tuple[str, str, str]]:
    """Every recorded series with a finite value now, keyed like `rule_key` (one query)."""
    found = set()
    for series in prom.query('{__name__=~"slo:.+|sloth_slo_info"}'):
        if math.isfinite(float(series["value"][1])):
            labels = series["metric"]
            name, slo_id = labels["__name__"], labels.get("sloth_id", "")
            # Burn-rate series inherit sloth_window from the ratio they divide, as in Sloth.
            found |= {(name, slo_id, labels.get("sloth_window", "")), (name, slo_id, "")}
    return found


def test_every_recording_rule_yields_a_value_and_nothing_fires(
    tmp_path: Path, service: Any, background_load: Any, prometheus_server: Any
) -> None:
    write_rule_files(load_slo_spec(), tmp_path / "rules")
    load = background_load(service.url, workers=3)
    # More streams, so that every scrape interval sees first tokens: a 5m window whose TTFT series
    # did not move records 0 / 0 = NaN, and the 30d average over it then stays NaN for 30 days.
    background_load(service.url, workers=3, stream=True)
    # Scraping starts once replies are flowing.
    deadline = time.monotonic() + 30
    while len(load.sent) < 12 and time.monotonic() < deadline:
        time.sleep(0.1)
    prom = prometheus_server(
        targets=[service.url.removeprefix("http://")], rule_files=sorted((tmp_path / "rules").glob("*.yaml"))
    )
    rules = recording_rules(tmp_path / "rules")
    assert len(rules) == 4 * 15
    deadline = time.monotonic() + 60
    missing = {rule_key(r) for r in rules}
    while missing and time.monotonic() < deadline:
        missing -= finite_recorded(prom)
        if missing:
            time.sleep(0.5)
    assert not missing, f"no finite value for {sorted(missing)}"
    # A healthy service within every threshold: the SLIs are good and no burn-rate alert fires.
    availability = prom.query('slo:sli_error:ratio_rate5m{sloth_id="rolescope-chat-availability"}')
    assert float(availability[0]["value"][1]) == 0.0
    remaining = prom.query('slo:period_error_budget_remaining:ratio{sloth_id="rolescope-chat-availability"}')
    assert float(remaining[0]["value"][1]) == 1.0
    assert prom.query('ALERTS{alertstate="firing", sloth_service="rolescope"}') == []


def test_injected_errors_take_the_page_alert_to_firing(
    tmp_path: Path, service_factory: Any, background_load: Any, prometheus_server: Any
) -> None:
    data = yaml.safe_load((ALERTS_DIR / "slo.yaml").read_text())
    data["alert_windows"] = SPEC_WINDOWS
    for slo in data["slos"]:
        slo["period"] = "1h"
    write_rule_files(parse_slo_spec(data, "shortened"), tmp_path / "rules")
    faulty = service_factory(env={"ROLESCOPE_FAULT_ERROR_RATE": "0.5"})
    # Non-streaming requests: a failed generation is a 5xx status (a stream has already sent 200).
    load = background_load(faulty.url, workers=3, stream=False)
    prom = prometheus_server(
        targets=[faulty.url.removeprefix("http://")], rule_files=sorted((tmp_path / "rules").glob("*.yaml"))
    )
    page = (
        'ALERTS{alertname="RolescopeChatAvailabilityBudgetBurn", sloth_severity="page", alertstate="firing"}'
    )
    firing = prom.wait_for(page, timeout=60)
    assert firing, f"page alert did not fire; {load.failures} of {len(load.sent)} requests failed"
    labels = firing[0]["metric"]
    assert labels["severity"] == "page"
    assert labels["sloth_slo"] == "chat-availability"
    assert labels["category"] == "availability"
