"""SLO spec → Prometheus recording rules and multi-window multi-burn-rate alerts.

The series names and labels are Sloth's (`slo:sli_error:ratio_rate<window>`,
`slo:objective:ratio`, `slo:error_budget:ratio`, `sloth_id`, `sloth_service`,
`sloth_slo`, `sloth_window`, ...) so Sloth's published Grafana SLO dashboards
work on rolescope's rules unchanged. Pure: returns plain dicts; `render.py`
writes them.
"""

from __future__ import annotations

from typing import Any

from rolescope.alerts.burn_rate import WindowPair, error_budget, format_duration, sli_windows
from rolescope.alerts.spec import WINDOW_PLACEHOLDER, AlertSpec, LatencySli, Slo, SloSpec

SLI_ERROR_SERIES = "slo:sli_error:ratio_rate"
OBJECTIVE_SERIES = "slo:objective:ratio"
ERROR_BUDGET_SERIES = "slo:error_budget:ratio"
TIME_PERIOD_SERIES = "slo:time_period:days"
CURRENT_BURN_SERIES = "slo:current_burn_rate:ratio"
PERIOD_BURN_SERIES = "slo:period_burn_rate:ratio"
BUDGET_REMAINING_SERIES = "slo:period_error_budget_remaining:ratio"
INFO_SERIES = "sloth_slo_info"
SLOTH_VERSION = "rolescope-1"

Rule = dict[str, Any]
Group = dict[str, Any]


def sloth_id(spec: SloSpec, slo: Slo) -> str:
    return f"{spec.service}-{slo.name}"


def id_labels(spec: SloSpec, slo: Slo) -> dict[str, str]:
    return {"sloth_id": sloth_id(spec, slo), "sloth_service": spec.service, "sloth_slo": slo.name}


def _selector(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def le_matcher(threshold: float) -> str:
    # client_python writes whole-number bounds as "5.0" while Prometheus 3 normalises
    # them to "5"; match both so the rule survives either scraper.
    if float(threshold).is_integer():
        whole = str(int(threshold))
        return f'le=~"{whole}|{whole}\\\\.0"'
    return f'le="{float(threshold)!r}"'


def _join_selector(*parts: str) -> str:
    inner = ", ".join(p for p in parts if p)
    return "{" + inner + "}" if inner else ""


def latency_error_query(latency: LatencySli, window: str) -> str:
    """Share of observations above the threshold: (all - at most threshold) / all."""
    total = f"{latency.histogram}_count{_join_selector(latency.selector)}"
    good = f"{latency.histogram}_bucket{_join_selector(latency.selector, le_matcher(latency.threshold))}"
    return (
        f"(\n  sum(rate({total}[{window}]))\n  -\n  sum(rate({good}[{window}]))\n)\n"
        f"/\n(sum(rate({total}[{window}])))"
    )


def sli_error_query(slo: Slo, window: str) -> str:
    if slo.sli.latency is not None:
        return latency_error_query(slo.sli.latency, window)
    events = slo.sli.events
    assert events is not None  # the model guarantees exactly one SLI kind
    error = events.error_query.replace(WINDOW_PLACEHOLDER, window)
    total = events.total_query.replace(WINDOW_PLACEHOLDER, window)
    return f"(\n  {error}\n)\n/\n(\n  {total}\n)"


def _common_labels(spec: SloSpec, slo: Slo) -> dict[str, str]:
    return {**spec.labels, **slo.labels, **id_labels(spec, slo)}


def sli_recordings(spec: SloSpec, slo: Slo) -> Group:
    windows = sli_windows(spec.window_pairs(), slo.period_s)
    base, period = format_duration(windows[0]), slo.period
    rules: list[Rule] = []
    for seconds in windows:
        window = format_duration(seconds)
        labels = {**_common_labels(spec, slo), "sloth_window": window}
        if seconds == slo.period_s and window != base:
            # The period's ratio averages the shortest window's ratios, as Sloth does:
            # a 30-day rate() over raw counters would be far too expensive to evaluate.
            ref = f"{SLI_ERROR_SERIES}{base}{_selector(id_labels(spec, slo))}"
            expr = (
                f"sum_over_time({ref}[{period}])\n/ ignoring (sloth_window)\ncount_over_time({ref}[{period}])"
            )
        else:
            expr = sli_error_query(slo, window)
        rules.append({"record": f"{SLI_ERROR_SERIES}{window}", "expr": expr, "labels": labels})
    return {"name": f"sloth-slo-sli-recordings-{sloth_id(spec, slo)}", "rules": rules}


def meta_recordings(spec: SloSpec, slo: Slo) -> Group:
    labels = _common_labels(spec, slo)
    sel = _selector(id_labels(spec, slo))
    objective_ratio = round(slo.objective / 100.0, 12)
    budget = error_budget(slo.objective)
    base = format_duration(sli_windows(spec.window_pairs(), slo.period_s)[0])
    join = "/ on (sloth_id, sloth_slo, sloth_service) group_left\n"
    rules: list[Rule] = [
        {"record": OBJECTIVE_SERIES, "expr": f"vector({objective_ratio!r})", "labels": labels},
        {"record": ERROR_BUDGET_SERIES, "expr": f"vector(1 - {objective_ratio!r})", "labels": labels},
        {"record": TIME_PERIOD_SERIES, "expr": f"vector({slo.period_s / 86400:g})", "labels": labels},
        {
            "record": CURRENT_BURN_SERIES,
            "expr": f"{SLI_ERROR_SERIES}{base}{sel}\n{join}{ERROR_BUDGET_SERIES}{sel}",
            "labels": labels,
        },
        {
            "record": PERIOD_BURN_SERIES,
            "expr": f"{SLI_ERROR_SERIES}{slo.period}{sel}\n{join}{ERROR_BUDGET_SERIES}{sel}",
            "labels": labels,
        },
        {"record": BUDGET_REMAINING_SERIES, "expr": f"1 - {PERIOD_BURN_SERIES}{sel}", "labels": labels},
        {
            "record": INFO_SERIES,
            "expr": "vector(1)",
            "labels": {
                **labels,
                "sloth_mode": "rolescope-generate",
                "sloth_spec": spec.version,
                "sloth_version": SLOTH_VERSION,
                "sloth_objective": f"{slo.objective:g}",
                "sloth_error_budget": f"{budget:g}",
            },
        },
    ]
    return {"name": f"sloth-slo-meta-recordings-{sloth_id(spec, slo)}", "rules": rules}


def _pair_condition(spec: SloSpec, slo: Slo, pair: WindowPair) -> str:
    sel = _selector(id_labels(spec, slo))
    threshold = f"({pair.factor(slo.period_s)!r} * {error_budget(slo.objective)!r})"
    parts = [
        f"max({SLI_ERROR_SERIES}{format_duration(w)}{sel} > {threshold}) without (sloth_window)"
        for w in (pair.short_window_s, pair.long_window_s)
    ]
    return "(\n    " + "\n    and\n    ".join(parts) + "\n)"


def burn_rate_alert(spec: SloSpec, slo: Slo, severity: str, alert: AlertSpec) -> Rule:
    pairs = [p for p in spec.window_pairs() if p.severity == severity]
    expr = "\nor\n".join(_pair_condition(spec, slo, p) for p in pairs)
    labels = {**slo.alerting.labels, **alert.labels, "sloth_severity": severity}
    annotations = {
        "title": f"({severity}) {{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} "
        "SLO error budget burn rate is too fast.",
        "summary": "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate "
        "is over expected.",
        **slo.alerting.annotations,
        **alert.annotations,
    }
    return {"alert": slo.alerting.name, "expr": expr, "labels": labels, "annotations": annotations}


def alert_rules(spec: SloSpec, slo: Slo) -> Group:
    rules = [
        burn_rate_alert(spec, slo, severity, alert)
        for severity, alert in (("page", slo.alerting.page_alert), ("ticket", slo.alerting.ticket_alert))
        if not alert.disable
    ]
    return {"name": f"sloth-slo-alerts-{sloth_id(spec, slo)}", "rules": rules}


def slo_rule_groups(spec: SloSpec) -> dict[str, list[Group]]:
    """The whole SLO rule file: per SLO its SLI recordings, metadata and alerts."""
    groups: list[Group] = []
    for slo in spec.slos:
        groups += [sli_recordings(spec, slo), meta_recordings(spec, slo)]
        alerts = alert_rules(spec, slo)
        if alerts["rules"]:
            groups.append(alerts)
    return {"groups": groups}
