"""OpenSLO v1 export and import: the round trip, foreign documents, and errors naming document and field."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rolescope.alerts.openslo import export_openslo, openslo_yaml, spec_yaml
from rolescope.alerts.openslo_import import import_openslo
from rolescope.alerts.spec import load_slo_spec, parse_slo_spec
from rolescope.errors import ConfigError
from rolescope.exporters import names

BUNDLED = Path(__file__).resolve().parents[2] / "alerts" / "slo.yaml"


def rolescope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rolescope", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


def prometheus(query: str) -> dict[str, Any]:
    return {"metricSource": {"type": "Prometheus", "spec": {"query": query}}}


def foreign_slo(name: str, indicator: dict[str, Any], **spec: Any) -> dict[str, Any]:
    body = {
        "service": "checkout",
        "indicator": {"metadata": {"name": f"{name}-sli"}, "spec": indicator},
        "timeWindow": [{"duration": "28d", "isRolling": True}],
        "budgetingMethod": "Occurrences",
        "objectives": [{"targetPercent": 99.5}],
    }
    body.update(spec)
    return {"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": name}, "spec": body}


def test_bundled_spec_survives_export_and_import_unchanged() -> None:
    spec = load_slo_spec()
    text = openslo_yaml(export_openslo(spec))
    result = import_openslo(list(yaml.safe_load_all(text)), "openslo.yaml")
    assert result.spec == spec
    assert result.notes == ()
    # The written spec loads back to the same model, so `import --out slo.yaml` is usable as is.
    assert parse_slo_spec(yaml.safe_load(spec_yaml(result.spec))) == spec


def test_custom_spec_with_selector_windows_and_whole_second_threshold_round_trips() -> None:
    data = yaml.safe_load(BUNDLED.read_text())
    data["slos"][1]["sli"]["latency"]["selector"] = 'role="sherlock"'
    data["slos"][1]["period"] = "7d"
    data["slos"][1]["labels"] = {"tier": "gold"}
    data["alert_windows"] = {
        severity: {
            speed: {"error_budget_percent": 2, "short_window": "1m", "long_window": "10m"}
            for speed in ("quick", "slow")
        }
        for severity in ("page", "ticket")
    }
    data["gate"] = {"alpha": 0.01}
    spec = parse_slo_spec(data)
    again = import_openslo(export_openslo(spec), "x").spec
    assert again == spec
    assert again.slos[2].sli.latency is not None and again.slos[2].sli.latency.threshold == 5.0


def test_export_writes_openslo_v1_slos_with_prometheus_queries_from_the_metric_names() -> None:
    documents = export_openslo(load_slo_spec())
    assert [d["kind"] for d in documents] == ["Service", "SLO", "SLO", "SLO", "SLO"]
    ttft = documents[2]
    assert ttft["apiVersion"] == "openslo/v1"
    assert ttft["spec"]["budgetingMethod"] == "Occurrences"
    assert ttft["spec"]["timeWindow"] == [{"duration": "30d", "isRolling": True}]
    assert ttft["spec"]["objectives"] == [{"target": 0.99}]
    ratio = ttft["spec"]["indicator"]["spec"]["ratioMetric"]
    assert ratio["good"]["metricSource"]["spec"]["query"] == (
        f'sum(rate({names.GENAI_TTFT}_bucket{{le="0.5"}}[{{{{.window}}}}]))'
    )
    assert (
        ratio["total"]["metricSource"]["spec"]["query"]
        == f"sum(rate({names.GENAI_TTFT}_count[{{{{.window}}}}]))"
    )
    assert "bad" in documents[1]["spec"]["indicator"]["spec"]["ratioMetric"]


def test_foreign_ratio_and_threshold_slos_become_events_and_latency_slis() -> None:
    documents = [
        {
            "apiVersion": "openslo/v1",
            "kind": "Service",
            "metadata": {"name": "checkout", "labels": {"team": "pay"}},
        },
        foreign_slo(
            "availability",
            {
                "ratioMetric": {
                    "counter": True,
                    "good": prometheus('http_requests_total{code!~"5.."}'),
                    "total": prometheus("http_requests_total"),
                }
            },
        ),
        foreign_slo(
            "first-token",
            {"thresholdMetric": prometheus(f'{names.GENAI_TTFT}{{role="curie"}}')},
            objectives=[{"op": "lte", "value": 0.25, "target": 0.95}],
        ),
        {
            "apiVersion": "openslo/v1",
            "kind": "AlertPolicy",
            "metadata": {"name": "pager"},
            "spec": {"conditions": []},
        },
    ]
    result = import_openslo(documents, "theirs.yaml")
    spec = result.spec
    assert spec.service == "checkout" and spec.labels == {"team": "pay"}
    availability, first_token = spec.slos
    assert availability.objective == 99.5 and availability.period == "28d"
    assert availability.sli.events is not None
    assert availability.sli.events.total_query == "sum(rate(http_requests_total[{{.window}}]))"
    assert availability.sli.events.error_query == (
        "(sum(rate(http_requests_total[{{.window}}]))) - "
        '(sum(rate(http_requests_total{code!~"5.."}[{{.window}}])))'
    )
    assert availability.alerting.name == "CheckoutAvailabilityBudgetBurn"
    assert first_token.sli.latency is not None
    assert (first_token.sli.latency.histogram, first_token.sli.latency.threshold) == (names.GENAI_TTFT, 0.25)
    assert first_token.sli.latency.selector == 'role="curie"'
    assert first_token.objective == 95.0
    assert any("AlertPolicy pager" in note for note in result.notes)


def test_what_the_spec_cannot_express_is_listed_per_document_and_field() -> None:
    documents = [
        foreign_slo("raw-ratio", {"ratioMetric": {"rawType": "success", "raw": prometheus("x")}}),
        foreign_slo(
            "slices",
            {"ratioMetric": {"bad": prometheus("sum(rate(e[{{.window}}]))"), "total": prometheus("t")}},
            budgetingMethod="Timeslices",
        ),
        foreign_slo(
            "calendar",
            {"ratioMetric": {"bad": prometheus("sum(rate(e[{{.window}}]))"), "total": prometheus("sum(t)")}},
            timeWindow=[{"duration": "1M", "calendar": {"startTime": "2024-01-01 00:00:00"}}],
        ),
        foreign_slo(
            "p99",
            {"thresholdMetric": prometheus(f"histogram_quantile(0.99, rate({names.GENAI_TTFT}_bucket[5m]))")},
            objectives=[{"op": "lte", "value": 0.5, "target": 0.99}],
        ),
        foreign_slo(
            "off-bucket",
            {"thresholdMetric": prometheus(names.GENAI_TTFT)},
            objectives=[{"op": "lte", "value": 0.3, "target": 0.99}],
        ),
        foreign_slo(
            "two-goals",
            {"ratioMetric": {"bad": prometheus("sum(rate(e[{{.window}}]))"), "total": prometheus("t")}},
            objectives=[{"target": 0.9}, {"target": 0.99}],
        ),
        {
            **foreign_slo("datadog", {"ratioMetric": {"bad": prometheus("x"), "total": prometheus("y")}}),
        },
        {"apiVersion": "openslo/v1alpha", "kind": "SLO", "metadata": {"name": "old"}},
    ]
    documents[6]["spec"]["indicator"]["spec"]["ratioMetric"]["bad"]["metricSource"]["type"] = "Datadog"
    with pytest.raises(ConfigError) as caught:
        import_openslo(documents, "theirs.yaml")
    message = str(caught.value)
    expected = [
        "theirs.yaml document 1 (SLO raw-ratio): spec.indicator.spec.ratioMetric.raw: a precomputed ratio",
        "theirs.yaml document 2 (SLO slices): spec.budgetingMethod: 'Timeslices'",
        "document 2 (SLO slices): spec.indicator.spec.ratioMetric.total.metricSource.spec.query: 't' has no",
        "document 3 (SLO calendar): spec.timeWindow[0]: calendar-aligned windows are not supported",
        "document 4 (SLO p99): spec.indicator.spec.thresholdMetric.metricSource.spec.query",
        "document 5 (SLO off-bucket): as a rolescope spec, sli.latency: threshold 0.3 s is not a bucket",
        "document 6 (SLO two-goals): spec.objectives: 2 objectives: a rolescope SLO has exactly one",
        "document 7 (SLO datadog): spec.indicator.spec.ratioMetric.bad.metricSource.type: 'Datadog'",
        "document 8 (SLO old): apiVersion: 'openslo/v1alpha': rolescope reads openslo/v1 only",
    ]
    for line in expected:
        assert line in message
    assert message.startswith("theirs.yaml: ")


def test_import_refuses_slos_of_several_services() -> None:
    other = foreign_slo("b", {"ratioMetric": {"bad": prometheus("e_total"), "total": prometheus("t_total")}})
    other["spec"]["service"] = "search"
    other["spec"]["indicator"]["spec"]["ratioMetric"]["counter"] = True
    first = foreign_slo(
        "a", {"ratioMetric": {"counter": True, "bad": prometheus("e"), "total": prometheus("t")}}
    )
    with pytest.raises(ConfigError, match=r"spec.service: the SLOs name 2 services \(checkout, search\)"):
        import_openslo([first, other], "two.yaml")


def test_cli_export_then_import_gives_back_the_bundled_spec(tmp_path: Path) -> None:
    exported = tmp_path / "openslo.yaml"
    result = rolescope("slo", "export", "--format", "openslo", "--out", str(exported))
    assert result.returncode == 0, result.stderr
    imported = tmp_path / "slo.yaml"
    result = rolescope("slo", "import", str(exported), "--out", str(imported))
    assert result.returncode == 0, result.stderr
    assert load_slo_spec(imported) == load_slo_spec()
    # The imported spec generates the same rules as the original.
    result = rolescope("slo", "validate", "--spec", str(imported), "--no-promtool")
    assert result.returncode == 0, result.stderr


def test_cli_import_of_a_bad_document_exits_2_naming_document_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            foreign_slo(
                "slices",
                {"ratioMetric": {"bad": prometheus("sum(rate(e[{{.window}}]))"), "total": prometheus("t")}},
                budgetingMethod="Timeslices",
            )
        )
    )
    result = rolescope("slo", "import", str(bad))
    assert result.returncode == 2
    assert "document 1 (SLO slices): spec.budgetingMethod" in result.stderr
    assert "Traceback" not in result.stderr
    result = rolescope("slo", "export", "--format", "sloth")
    assert result.returncode == 2
    assert "the only export format is openslo" in result.stderr


def test_an_indicator_ref_reads_the_sli_document_of_the_same_file() -> None:
    sli = {
        "apiVersion": "openslo/v1",
        "kind": "SLI",
        "metadata": {"name": "errors"},
        "spec": {
            "ratioMetric": {"counter": True, "bad": prometheus("e_total"), "total": prometheus("t_total")}
        },
    }
    slo = foreign_slo("by-ref", {})
    del slo["spec"]["indicator"]
    slo["spec"]["indicatorRef"] = "errors"
    events = import_openslo([sli, slo], "ref.yaml").spec.slos[0].sli.events
    assert events is not None and events.error_query == "sum(rate(e_total[{{.window}}]))"
    slo["spec"]["indicatorRef"] = "missing"
    with pytest.raises(ConfigError, match=r"spec.indicatorRef: 'missing': no SLI document of that name"):
        import_openslo([sli, slo], "ref.yaml")
