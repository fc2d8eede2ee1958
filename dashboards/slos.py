"""The SLO dashboard: per SLO of the spec, SLI vs objective, burn rates and error budget left.

It reads only the Sloth series the rule generator records, so it shows the
same numbers the burn-rate alerts act on.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from rolescope.alerts import rules
from rolescope.alerts.burn_rate import format_duration
from rolescope.alerts.spec import Slo, SloSpec
from rolescope.dashboards.common import new_dashboard, stat_panel, timeseries_panel

SLOS_UID = "rolescope-slos"


def _sel(spec: SloSpec, slo: Slo) -> str:
    return f'{{sloth_id="{rules.sloth_id(spec, slo)}"}}'


def _burn(spec: SloSpec, slo: Slo, window: str) -> str:
    sel = _sel(spec, slo)
    return (
        f"{rules.SLI_ERROR_SERIES}{window}{sel}\n/ on (sloth_id) group_left\n{rules.ERROR_BUDGET_SERIES}{sel}"
    )


def _slo_row(builder: db.Dashboard, spec: SloSpec, slo: Slo) -> db.Dashboard:
    sel = _sel(spec, slo)
    pairs = spec.window_pairs()
    base = format_duration(min(p.short_window_s for p in pairs))
    windows = sorted({p.long_window_s for p in pairs} | {p.short_window_s for p in pairs})
    objective = slo.objective / 100.0
    return (
        builder.with_row(db.Row(f"{slo.name} — objective {slo.objective:g} % over {slo.period}"))
        .with_panel(
            stat_panel(
                "SLI over the period",
                slo.description or "Share of good events over the SLO period.",
                "percentunit",
                f"1 - {rules.SLI_ERROR_SERIES}{slo.period}{sel}",
                thresholds=[(None, "red"), (objective, "green")],
            )
        )
        .with_panel(
            stat_panel(
                "Error budget remaining",
                "Share of the period's error budget not yet spent.",
                "percentunit",
                f"{rules.BUDGET_REMAINING_SERIES}{sel}",
                thresholds=[(None, "red"), (0.25, "orange"), (0.5, "green")],
            )
        )
        .with_panel(
            stat_panel(
                "Current burn rate",
                f"Error ratio over {base} divided by the error budget (1 = on budget).",
                "x",
                f"{rules.CURRENT_BURN_SERIES}{sel}",
                thresholds=[(None, "green"), (1.0, "orange"), (6.0, "red")],
            )
        )
        .with_panel(
            stat_panel(
                "Period burn rate",
                "Error ratio over the whole period divided by the error budget.",
                "x",
                f"{rules.PERIOD_BURN_SERIES}{sel}",
                thresholds=[(None, "green"), (1.0, "red")],
            )
        )
        .with_panel(
            timeseries_panel(
                "SLI vs objective",
                "Share of good events (1 - error ratio) against the objective.",
                "percentunit",
                [
                    (f"1 - {rules.SLI_ERROR_SERIES}{base}{sel}", f"SLI ({base})"),
                    (f"{rules.OBJECTIVE_SERIES}{sel}", "objective"),
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Burn rate by window",
                "Page: 14.4× over 1h and 5m or 6× over 6h and 30m; "
                "ticket: 3× over 1d and 2h or 1× over 3d and 6h.",
                "x",
                [(_burn(spec, slo, format_duration(w)), format_duration(w)) for w in windows][:10],
            )
        )
    )


def slos(spec: SloSpec) -> db.Dashboard:
    builder = new_dashboard(
        SLOS_UID,
        "rolescope / SLOs",
        "Every SLO of the spec: SLI against objective, multi-window burn rates and error budget remaining. "
        "Built on Sloth's series, so Sloth's own dashboards work on the same rules.",
        with_role=False,
    )
    builder = builder.with_row(db.Row("Alerts")).with_panel(
        timeseries_panel(
            "Firing SLO alerts",
            "Burn-rate alerts currently firing, by SLO and severity.",
            "short",
            [
                (
                    "sum by (sloth_slo, sloth_severity) "
                    f'(ALERTS{{sloth_service="{spec.service}", alertstate="firing"}})',
                    "{{sloth_slo}} {{sloth_severity}}",
                )
            ],
            width=24,
        )
    )
    for slo in spec.slos:
        builder = _slo_row(builder, spec, slo)
    return builder
