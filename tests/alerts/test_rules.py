"""The rule generator: Sloth's series and labels, the burn-rate alerts, the operational alerts."""

from __future__ import annotations

from typing import Any

from rolescope.alerts.operational import ALERT_NAMES, operational_group
from rolescope.alerts.rules import slo_rule_groups
from rolescope.alerts.spec import load_slo_spec
from rolescope.exporters import names

SLOTH_META = {
    "slo:objective:ratio",
    "slo:error_budget:ratio",
    "slo:time_period:days",
    "slo:current_burn_rate:ratio",
    "slo:period_burn_rate:ratio",
    "slo:period_error_budget_remaining:ratio",
    "sloth_slo_info",
}


def groups() -> list[dict[str, Any]]:
    return list(slo_rule_groups(load_slo_spec())["groups"])


def test_each_slo_has_sloth_named_groups() -> None:
    assert [g["name"] for g in groups()[:3]] == [
        "sloth-slo-sli-recordings-rolescope-chat-availability",
        "sloth-slo-meta-recordings-rolescope-chat-availability",
        "sloth-slo-alerts-rolescope-chat-availability",
    ]
    assert len(groups()) == 3 * 4


def test_sli_recordings_cover_every_window_with_sloth_labels() -> None:
    sli = groups()[0]["rules"]
    assert [r["record"] for r in sli] == [
        f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
    ]
    assert sli[0]["labels"] == {
        "owner": "sre",
        "sloth_id": "rolescope-chat-availability",
        "sloth_service": "rolescope",
        "sloth_slo": "chat-availability",
        "sloth_window": "5m",
    }
    assert "[5m]" in sli[0]["expr"] and names.HTTP_REQUESTS_TOTAL in sli[0]["expr"]
    # The period averages the 5m ratios instead of a 30-day rate over raw counters.
    assert sli[-1]["expr"].startswith("sum_over_time(slo:sli_error:ratio_rate5m{")


def test_meta_recordings_are_sloths() -> None:
    meta = {r["record"]: r for r in groups()[1]["rules"]}
    assert set(meta) == SLOTH_META
    assert meta["slo:objective:ratio"]["expr"] == "vector(0.999)"
    assert meta["slo:time_period:days"]["expr"] == "vector(30)"
    assert meta["sloth_slo_info"]["labels"]["sloth_objective"] == "99.9"


def test_latency_sli_counts_observations_above_the_threshold_bucket() -> None:
    ttft = groups()[3]["rules"][0]["expr"]
    assert f'{names.GENAI_TTFT}_bucket{{le="0.5"}}[5m]' in ttft
    assert f"{names.GENAI_TTFT}_count[5m]" in ttft
    e2e = groups()[6]["rules"][0]["expr"]
    # 5.0 is written "5.0" by client_python and "5" by Prometheus 3: both match.
    assert 'le=~"5|5\\\\.0"' in e2e


def test_page_and_ticket_alerts_use_the_workbook_pairs() -> None:
    page, ticket = groups()[2]["rules"]
    assert page["alert"] == ticket["alert"] == "RolescopeChatAvailabilityBudgetBurn"
    assert page["labels"]["sloth_severity"] == "page" and page["labels"]["severity"] == "page"
    assert ticket["labels"]["sloth_severity"] == "ticket" and ticket["labels"]["severity"] == "ticket"
    assert (
        "ratio_rate5m" in page["expr"] and "ratio_rate1h" in page["expr"] and "(14.4 * 0.001)" in page["expr"]
    )
    assert (
        "ratio_rate30m" in page["expr"] and "ratio_rate6h" in page["expr"] and "(6.0 * 0.001)" in page["expr"]
    )
    assert (
        "ratio_rate2h" in ticket["expr"]
        and "ratio_rate1d" in ticket["expr"]
        and "(3.0 * 0.001)" in ticket["expr"]
    )
    assert (
        "ratio_rate6h" in ticket["expr"]
        and "ratio_rate3d" in ticket["expr"]
        and "(1.0 * 0.001)" in ticket["expr"]
    )
    assert page["annotations"]["title"].startswith("(page) {{$labels.sloth_service}}")


def test_disabled_ticket_alert_is_left_out() -> None:
    spec = load_slo_spec()
    data = spec.model_dump()
    data["slos"][0]["alerting"]["ticket_alert"]["disable"] = True
    changed = type(spec).model_validate(data)
    alerts = slo_rule_groups(changed)["groups"][2]["rules"]
    assert [a["labels"]["sloth_severity"] for a in alerts] == ["page"]


def test_operational_alerts_use_the_metric_names_and_spec_thresholds() -> None:
    rules = {r["alert"]: r for r in operational_group(load_slo_spec())["rules"]}
    assert tuple(rules) == ALERT_NAMES
    assert rules["RolescopeServiceDown"]["expr"] == 'up{job=~".*rolescope.*"} == 0'
    assert names.CONCURRENCY_LIMIT in rules["RolescopeSaturated"]["expr"]
    assert "> 0.9" in rules["RolescopeSaturated"]["expr"]
    assert names.MEMORY_BASELINE_BYTES_PER_REQUEST in rules["RolescopeMemoryPerRequestAboveBaseline"]["expr"]
    assert "> 1.04" in rules["RolescopeMemoryPerRequestAboveBaseline"]["expr"]
    assert names.TELEMETRY_DROPPED_TOTAL in rules["RolescopeTelemetryDropped"]["expr"]
    assert "offset 30m" in rules["RolescopeInferenceTimeoutsRising"]["expr"]
    assert {r["labels"]["severity"] for r in rules.values()} == {"page", "ticket"}


def test_an_slo_can_be_filtered_to_one_role_version(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from importlib import resources

    import yaml

    bundled = resources.files("rolescope.alerts").joinpath("slo.yaml").read_text(encoding="utf-8")
    document = yaml.safe_load(bundled)
    ttft = next(slo for slo in document["slos"] if "latency" in slo["sli"])
    ttft["sli"]["latency"]["selector"] = f'{names.LABEL_ROLE_VERSION}="1.3"'
    path = tmp_path / "slo.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    rules = [g for g in slo_rule_groups(load_slo_spec(path))["groups"] if ttft["name"] in g["name"]]
    expr = rules[0]["rules"][0]["expr"]
    assert f'{names.GENAI_TTFT}_bucket{{role_version="1.3", le="0.5"}}[5m]' in expr
    assert f'{names.GENAI_TTFT}_count{{role_version="1.3"}}[5m]' in expr
