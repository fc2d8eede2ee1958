"""The SLO spec as OpenSLO v1 documents, and OpenSLO v1 ratio and threshold SLOs read back into it.

Export writes one `Service` document (the spec's service, its labels, and the
gate and window settings OpenSLO has no field for, as `rolescope/…`
annotations) and one `SLO` per objective: an inline indicator whose
`ratioMetric` holds Prometheus rate queries over `{{.window}}`, a rolling time
window of the SLO's period, Occurrences budgeting and one objective. Import
reads the same shapes from any OpenSLO v1 file and says, per document and
field, what rolescope's spec cannot express. Pure: documents in, documents out.
"""

from __future__ import annotations

import json
from typing import Any

from rolescope.alerts.openslo_queries import latency_good_query, latency_total_query
from rolescope.alerts.render import to_yaml
from rolescope.alerts.rules import le_matcher
from rolescope.alerts.spec import Slo, SloSpec

API_VERSION = "openslo/v1"
SOURCE_TYPE = "Prometheus"
ALERTING_ANNOTATION = "rolescope/alerting"
GATE_ANNOTATION = "rolescope/gate"
OPERATIONAL_ANNOTATION = "rolescope/operational"
WINDOWS_ANNOTATION = "rolescope/alert-windows"

Document = dict[str, Any]


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def _metric(query: str) -> Document:
    return {"metricSource": {"type": SOURCE_TYPE, "spec": {"query": query}}}


def _indicator(slo: Slo) -> Document:
    latency, events = slo.sli.latency, slo.sli.events
    if latency is not None:
        ratio = {
            "counter": False,
            "good": _metric(latency_good_query(latency, le_matcher(latency.threshold))),
            "total": _metric(latency_total_query(latency)),
        }
    else:
        assert events is not None  # the model guarantees exactly one SLI kind
        ratio = {"counter": False, "bad": _metric(events.error_query), "total": _metric(events.total_query)}
    return {"metadata": {"name": f"{slo.name}-sli"}, "spec": {"ratioMetric": ratio}}


def _slo_document(spec: SloSpec, slo: Slo) -> Document:
    metadata: Document = {"name": slo.name}
    if slo.labels:
        metadata["labels"] = dict(slo.labels)
    metadata["annotations"] = {ALERTING_ANNOTATION: _compact(slo.alerting.model_dump(exclude_defaults=True))}
    body: Document = {"description": slo.description} if slo.description else {}
    body |= {
        "service": spec.service,
        "indicator": _indicator(slo),
        "timeWindow": [{"duration": slo.period, "isRolling": True}],
        "budgetingMethod": "Occurrences",
        "objectives": [{"target": round(slo.objective / 100.0, 12)}],
    }
    return {"apiVersion": API_VERSION, "kind": "SLO", "metadata": metadata, "spec": body}


def _service_document(spec: SloSpec) -> Document:
    annotations = {
        GATE_ANNOTATION: _compact(spec.gate.model_dump(mode="json")),
        OPERATIONAL_ANNOTATION: _compact(spec.operational.model_dump(mode="json")),
    }
    if spec.alert_windows is not None:
        annotations[WINDOWS_ANNOTATION] = _compact(spec.alert_windows.model_dump(mode="json"))
    metadata: Document = {"name": spec.service}
    if spec.labels:
        metadata["labels"] = dict(spec.labels)
    metadata["annotations"] = annotations
    return {
        "apiVersion": API_VERSION,
        "kind": "Service",
        "metadata": metadata,
        "spec": {"description": f"The service whose SLOs rolescope judges ({len(spec.slos)} SLOs)."},
    }


def export_openslo(spec: SloSpec) -> list[Document]:
    """One `Service` document, then one `SLO` document per SLO of the spec."""
    return [_service_document(spec), *(_slo_document(spec, slo) for slo in spec.slos)]


def openslo_yaml(documents: list[Document]) -> str:
    """The documents as one multi-document YAML stream."""
    return "".join("---\n" + to_yaml(document) for document in documents)


def spec_yaml(spec: SloSpec) -> str:
    """A spec as `alerts/slo.yaml` writes it: defaults left out, fields in the model's order."""
    return to_yaml(spec.model_dump(mode="json", exclude_defaults=True))
