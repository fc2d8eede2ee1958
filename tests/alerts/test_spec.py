"""The SLO spec: the bundled defaults, and errors that name the file, the field and the value."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from rolescope.alerts.spec import (
    HISTOGRAM_BUCKETS,
    LATENCY_FIGURES,
    LatencyObjective,
    load_slo_spec,
    parse_slo_spec,
)
from rolescope.errors import ConfigError
from rolescope.exporters import names

BUNDLED = Path(__file__).resolve().parents[2] / "alerts" / "slo.yaml"


def bundled_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(BUNDLED.read_text())
    return data


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "slo.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_bundled_spec_has_the_four_default_slos() -> None:
    spec = load_slo_spec()
    assert [s.name for s in spec.slos] == [
        "chat-availability",
        "streaming-time-to-first-token",
        "end-to-end-latency",
        "inference-timeouts",
    ]
    assert [s.objective for s in spec.slos] == [99.9, 99.0, 99.0, 99.9]
    assert all(s.period == "30d" for s in spec.slos)


def test_latency_objectives_are_the_client_side_figure_in_seconds_and_a_fraction() -> None:
    assert load_slo_spec().latency_objectives() == (
        LatencyObjective("streaming-time-to-first-token", "ttft", 0.5, 0.99),
        LatencyObjective("end-to-end-latency", "e2e", 5.0, 0.99),
    )


def test_every_histogram_a_spec_may_name_is_judged_on_a_client_side_figure() -> None:
    assert set(LATENCY_FIGURES) == set(HISTOGRAM_BUCKETS)


def test_gate_section_defaults_match_the_benchmem_rule() -> None:
    gate = load_slo_spec().gate
    assert gate.memory.allocations_per_request == 0.05
    assert gate.memory.bytes_per_request == 0.04
    assert gate.relative_tolerance.ttft_p95 == 0.10
    assert gate.relative_tolerance.e2e_p95 == 0.10
    assert gate.relative_tolerance.tpot_p95 == 0.10
    assert gate.relative_tolerance.throughput == 0.10
    assert gate.alpha == 0.05
    assert gate.goodput.objective == 0.95


def test_bundled_queries_only_name_metrics_defined_in_exporters_names() -> None:
    known = {value for key, value in vars(names).items() if key.isupper() and isinstance(value, str)}
    spec = load_slo_spec()
    for slo in spec.slos:
        if slo.sli.events is not None:
            text = slo.sli.events.error_query + " " + slo.sli.events.total_query
            metrics = set(re.findall(r"\b(rolescope_\w+|gen_ai_\w+)", text))
            for metric in metrics:
                assert metric in known or metric.removesuffix("_count") in known, metric
        else:
            assert slo.sli.latency is not None and slo.sli.latency.histogram in known


def test_threshold_that_is_not_a_bucket_bound_is_rejected_with_file_field_and_bounds(tmp_path: Path) -> None:
    data = bundled_data()
    data["slos"][1]["sli"]["latency"]["threshold"] = 0.3
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        load_slo_spec(path)
    message = str(caught.value)
    assert str(path) in message
    assert "slos[1].sli.latency" in message
    assert "0.3" in message and names.GENAI_TTFT in message and "0.25, 0.5" in message


def test_unknown_histogram_is_rejected(tmp_path: Path) -> None:
    data = bundled_data()
    data["slos"][2]["sli"]["latency"]["histogram"] = "made_up_seconds"
    with pytest.raises(ConfigError, match=r"slos\[2\]\.sli\.latency.*made_up_seconds"):
        load_slo_spec(write(tmp_path, data))


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda d: d["slos"][0].update(objective=100), r"slos\[0\]\.objective = 100"),
        (lambda d: d["slos"][0].update(period="30 days"), r"slos\[0\]\.period = '30 days'.*duration"),
        (
            lambda d: d["slos"][0]["sli"]["events"].update(error_query="sum(rate(x[5m]))"),
            r"slos\[0\]\.sli\.events\.error_query.*\{\{\.window\}\}",
        ),
        (
            lambda d: d["slos"][0]["sli"].update(latency={"histogram": names.GENAI_TTFT, "threshold": 0.5}),
            r"slos\[0\]\.sli.*exactly one",
        ),
        (lambda d: d["slos"].append(d["slos"][0]), r"slos.*two SLOs are named 'chat-availability'"),
        (lambda d: d.update(unexpected=1), r"unexpected.*[Ee]xtra"),
        (lambda d: d["gate"]["memory"].update(bytes_per_request=4), r"gate\.memory\.bytes_per_request = 4"),
        (lambda d: d.update(version="sloth/v1"), r"version = 'sloth/v1'"),
    ],
)
def test_invalid_fields_are_named_with_their_value(tmp_path: Path, mutate: Any, pattern: str) -> None:
    data = bundled_data()
    mutate(data)
    with pytest.raises(ConfigError, match=pattern):
        load_slo_spec(write(tmp_path, data))


def test_missing_file_and_bad_yaml_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such SLO spec file"):
        load_slo_spec(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("slos: [\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        load_slo_spec(broken)
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse_slo_spec(["a list"], "list.yaml")


def test_custom_alert_windows_replace_the_workbook_table() -> None:
    data = bundled_data()
    data["alert_windows"] = {
        "page": {
            "quick": {"error_budget_percent": 2, "short_window": "10s", "long_window": "1m"},
            "slow": {"error_budget_percent": 5, "short_window": "30s", "long_window": "3m"},
        },
        "ticket": {
            "quick": {"error_budget_percent": 10, "short_window": "1m", "long_window": "6m"},
            "slow": {"error_budget_percent": 10, "short_window": "3m", "long_window": "18m"},
        },
    }
    spec = parse_slo_spec(data)
    pairs = spec.window_pairs()
    assert [(p.severity, p.speed, p.short_window_s, p.long_window_s) for p in pairs] == [
        ("page", "quick", 10, 60),
        ("page", "slow", 30, 180),
        ("ticket", "quick", 60, 360),
        ("ticket", "slow", 180, 1080),
    ]


def test_short_window_must_be_shorter_than_long_window() -> None:
    data = bundled_data()
    window = {"error_budget_percent": 2, "short_window": "1h", "long_window": "5m"}
    data["alert_windows"] = {
        "page": {"quick": window, "slow": window},
        "ticket": {"quick": window, "slow": window},
    }
    with pytest.raises(ConfigError, match=r"alert_windows\.page\.quick.*short_window 1h must be shorter"):
        parse_slo_spec(data, "w.yaml")


def test_a_spec_without_a_ttft_slo_has_only_its_other_latency_objectives() -> None:
    data = bundled_data()
    data["slos"] = [s for s in data["slos"] if s["name"] != "streaming-time-to-first-token"]
    assert [o.metric for o in parse_slo_spec(data).latency_objectives()] == ["e2e"]
