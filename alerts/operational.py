"""Operational alerts that sit beside the SLO burn-rate alerts.

They catch causes rather than symptoms: a scrape target gone, inference
timeouts climbing, telemetry being dropped, the admission limit nearly reached,
and per-request memory growing past its committed baseline. Every metric name
comes from `rolescope.exporters.names`; thresholds come from the spec.
"""

from __future__ import annotations

from typing import Any

from rolescope.alerts.spec import SloSpec
from rolescope.exporters import names

GROUP_NAME = "rolescope-operational"
SERVICE_DOWN = "RolescopeServiceDown"
TIMEOUTS_RISING = "RolescopeInferenceTimeoutsRising"
TELEMETRY_DROPS = "RolescopeTelemetryDropped"
SATURATED = "RolescopeSaturated"
MEMORY_ABOVE_BASELINE = "RolescopeMemoryPerRequestAboveBaseline"
ALERT_NAMES = (SERVICE_DOWN, TIMEOUTS_RISING, TELEMETRY_DROPS, SATURATED, MEMORY_ABOVE_BASELINE)


def _alert(
    name: str, expr: str, duration: str, severity: str, summary: str, description: str, spec: SloSpec
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {**spec.labels, "service": spec.service, "severity": severity},
        "annotations": {"summary": summary, "description": description},
    }


def operational_group(spec: SloSpec) -> dict[str, Any]:
    op = spec.operational
    job = "{" + op.job_selector + "}"
    tolerance = spec.gate.memory.bytes_per_request
    rules = [
        _alert(
            SERVICE_DOWN,
            f"up{job} == 0",
            "1m",
            "page",
            "rolescope target {{ $labels.instance }} is down.",
            "Prometheus could not scrape {{ $labels.instance }} (job {{ $labels.job }}) for a minute.",
            spec,
        ),
        _alert(
            TIMEOUTS_RISING,
            f"(\n  sum by (role) (rate({names.INFERENCE_TIMEOUTS_TOTAL}[5m]))\n  /\n"
            f"  (sum by (role) (rate({names.GENAI_REQUEST_DURATION}_count[5m]))"
            f" + sum by (role) (rate({names.INFERENCE_TIMEOUTS_TOTAL}[5m])))\n)\n"
            f"> {op.inference_timeout_ratio!r}\n"
            f"and\nsum by (role) (rate({names.INFERENCE_TIMEOUTS_TOTAL}[5m]))\n"
            f"> sum by (role) (rate({names.INFERENCE_TIMEOUTS_TOTAL}[5m] offset 30m))",
            "5m",
            "ticket",
            "Inference timeouts of role {{ $labels.role }} are rising.",
            f"More than {op.inference_timeout_ratio:.0%} of generations of role {{{{ $labels.role }}}} "
            "time out ({{ $value | humanizePercentage }}) and timeouts are more frequent "
            "than half an hour ago.",
            spec,
        ),
        _alert(
            TELEMETRY_DROPS,
            f"sum by (job, instance, signal, reason) (rate({names.TELEMETRY_DROPPED_TOTAL}[5m])) > 0",
            "10m",
            "ticket",
            "{{ $labels.instance }} drops {{ $labels.signal }} telemetry ({{ $labels.reason }}).",
            "Telemetry is dropped instead of slowing requests; traces or captured traffic are incomplete.",
            spec,
        ),
        _alert(
            SATURATED,
            f"sum by (job, instance) ({names.HTTP_IN_FLIGHT})\n"
            f"/ on (job, instance)\n(max by (job, instance) ({names.CONCURRENCY_LIMIT}) > 0)\n"
            f"> {op.saturation_ratio!r}",
            "5m",
            "page",
            "{{ $labels.instance }} is near its concurrency limit.",
            f"In-flight requests are above {op.saturation_ratio:.0%} of {names.CONCURRENCY_LIMIT} "
            "({{ $value | humanizePercentage }}); new requests will soon get 503.",
            spec,
        ),
        _alert(
            MEMORY_ABOVE_BASELINE,
            f"{names.MEMORY_BYTES_PER_REQUEST}\n/ on (job, instance, kind)\n"
            f"({names.MEMORY_BASELINE_BYTES_PER_REQUEST} > 0)\n> {1 + tolerance!r}",
            "15m",
            "ticket",
            "Bytes allocated per request on {{ $labels.instance }} exceed the baseline.",
            f"Per-request allocation is {{{{ $value | humanize }}}}× the committed baseline "
            f"(tolerance {tolerance:.0%}); profile with `rolescope tune`.",
            spec,
        ),
    ]
    return {"name": GROUP_NAME, "rules": rules}
