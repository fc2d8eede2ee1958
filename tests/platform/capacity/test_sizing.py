"""From capacity to settings: replicas, the HPA target and a Helm snippet the chart renders."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from rolescope import helm_assets
from rolescope.capacity.sizing import REQUESTS_METRIC, helm_snippet, helm_values, size_for

ROOT = Path(__file__).resolve().parents[3]


def test_replicas_cover_the_target_rate_at_the_headroom() -> None:
    sizing = size_for(200.0, 40.0, 0.3, edge_p99_s=0.8)
    assert sizing.per_pod_rps == pytest.approx(28.0)
    assert sizing.replicas == 8  # 200 ÷ 28 = 7.14 → 8
    assert sizing.max_replicas == 12
    assert sizing.concurrency_limit == 32  # Little's law at the edge: 40 req/s × 0.8 s


def test_a_configured_concurrency_limit_is_kept() -> None:
    assert size_for(10.0, 40.0, 0.3, 0.8, limit=16).concurrency_limit == 16


def test_bad_sizing_input_is_refused() -> None:
    with pytest.raises(ValueError, match="headroom"):
        size_for(10.0, 40.0, 1.0, None)
    with pytest.raises(ValueError, match="rates must be > 0"):
        size_for(0.0, 40.0, 0.3, None)


def test_the_helm_snippet_renders_an_hpa_on_requests_per_second_per_pod() -> None:
    sizing = size_for(200.0, 40.0, 0.3, edge_p99_s=0.8)
    snippet = yaml.safe_load(helm_snippet(sizing))
    assert snippet == helm_values(sizing)
    # Several replicas need the Redis session store, exactly as the chart's own redis case sets it.
    redis_case = helm_assets.load_values(helm_assets.values_files(ROOT)["redis"])
    values = {**redis_case, **snippet, "autoscaling": snippet["autoscaling"]}
    documents = helm_assets.render_documents(ROOT, values)
    deployment = next(
        d for d in documents if d["kind"] == "Deployment" and "load" not in d["metadata"]["name"]
    )
    hpa = next(d for d in documents if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] == 8 and hpa["spec"]["maxReplicas"] == 12
    pods = [m for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert pods == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": REQUESTS_METRIC},
                "target": {"type": "AverageValue", "averageValue": "28"},
            },
        }
    ]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env.get("ROLESCOPE_CONCURRENCY_LIMIT") == "32"
    for document in (hpa, deployment):
        kubernetes_validate.validate(document, "1.30.0", strict=True)


def test_without_a_requests_target_the_hpa_scales_on_cpu_only() -> None:
    redis_case = helm_assets.load_values(helm_assets.values_files(ROOT)["redis"])
    values = {**redis_case, "autoscaling": {"enabled": True}}
    hpa = next(
        d for d in helm_assets.render_documents(ROOT, values) if d["kind"] == "HorizontalPodAutoscaler"
    )
    assert [m["type"] for m in hpa["spec"]["metrics"]] == ["Resource"]
