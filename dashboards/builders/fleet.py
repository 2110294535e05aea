"""Fleet overview (operations): machines online by clinic, activity today and this week,
adherence distribution per clinic, alerts by type, data quality. Aggregates only."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import common, dashboard

from dashboards import thresholds as t
from dashboards.panels import (
    GREEN,
    ORANGE,
    RED,
    barchart_panel,
    cell_colour,
    prop,
    query_variable,
    row,
    stat_panel,
    steps,
    table_panel,
    threshold_prop,
    timeseries_panel,
)

KIND = "fleet"
TITLE = "Fleet overview"


def build(uid: str, title: str, ds: str) -> dash_b.Dashboard:
    activity = "fleet_activity"
    return (
        dash_b.Dashboard(title)
        .uid(uid)
        .tags(["sledfleet", "operations"])
        .time("now-7d", "now")
        .timezone("browser")
        .refresh("1m")
        .readonly()
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .with_variable(
            query_variable("clinic", "Clinics", "var_clinic", ds, multi=True, include_all=True)
        )
        .with_row(row("Activity"))
        .with_panel(
            stat_panel("Sessions today", activity, ds, "none", w=6, fields="/^sessions_today$/")
        )
        .with_panel(stat_panel("Reps today", activity, ds, "none", w=6, fields="/^reps_today$/"))
        .with_panel(
            stat_panel(
                "Sessions this week", activity, ds, "none", w=6, fields="/^sessions_this_week$/"
            )
        )
        .with_panel(
            stat_panel("Reps this week", activity, ds, "none", w=6, fields="/^reps_this_week$/")
        )
        .with_panel(
            barchart_panel(
                "Machines online and offline by clinic",
                "fleet_machines_online",
                ds,
                "none",
                stacked=True,
            )
            .override_by_name("online", [prop("color", {"mode": "fixed", "fixedColor": GREEN})])
            .override_by_name("offline", [prop("color", {"mode": "fixed", "fixedColor": RED})])
        )
        .with_panel(
            timeseries_panel(
                "Sessions per day by clinic",
                "fleet_sessions_daily",
                ds,
                "none",
                draw=common.GraphDrawStyle.BARS,
                stacked=True,
            )
        )
        .with_row(row("Adherence and alerts"))
        .with_panel(
            barchart_panel(
                "Patients by rolling 4-week adherence (latest week)",
                "fleet_adherence_distribution",
                ds,
                "none",
                stacked=True,
                description="Counts of patients per adherence band in each clinic; no "
                "per-patient rows reach the operations role.",
            )
            .override_by_name("below_50", [prop("color", {"mode": "fixed", "fixedColor": RED})])
            .override_by_name(
                "from_50_to_75", [prop("color", {"mode": "fixed", "fixedColor": ORANGE})]
            )
            .override_by_name(
                "from_75_to_100", [prop("color", {"mode": "fixed", "fixedColor": GREEN})]
            )
            .override_by_name(
                "at_or_above_100", [prop("color", {"mode": "fixed", "fixedColor": "dark-green"})]
            )
            .override_by_name(
                "patients",
                [prop("custom.hideFrom", {"viz": True, "legend": True, "tooltip": False})],
            )
            .override_by_name(
                "median_adherence",
                [
                    prop("custom.hideFrom", {"viz": True, "legend": True, "tooltip": False}),
                    prop("unit", "percentunit"),
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Alerts by type",
                "fleet_alerts_by_type",
                ds,
                "none",
                draw=common.GraphDrawStyle.BARS,
                stacked=True,
            )
        )
        .with_row(row("Data quality"))
        .with_panel(
            table_panel(
                "Data quality by clinic",
                "fleet_data_quality",
                ds,
                h=7,
                overrides=[
                    ("frames_missing", [cell_colour(), threshold_prop((None, GREEN), (1, ORANGE))]),
                    ("edge_dropped", [cell_colour(), threshold_prop((None, GREEN), (1, RED))]),
                    (
                        "max_abs_clock_offset_ms",
                        [
                            prop("unit", "ms"),
                            cell_colour(),
                            threshold_prop(
                                (None, GREEN),
                                (t.CLOCK_OFFSET_WARN_MS, ORANGE),
                                (t.CLOCK_OFFSET_CRITICAL_MS, RED),
                            ),
                        ],
                    ),
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Frame gaps (missing frames)", "fleet_frame_gaps", ds, "none", w=8, stacked=True
            )
        )
        .with_panel(
            timeseries_panel(
                "Worst device clock offset",
                "fleet_clock_skew",
                ds,
                "ms",
                w=8,
                thresholds=steps(
                    (None, GREEN),
                    (t.CLOCK_OFFSET_WARN_MS, ORANGE),
                    (t.CLOCK_OFFSET_CRITICAL_MS, RED),
                ),
                threshold_style=common.GraphThresholdsStyleMode.DASHED,
            )
        )
        .with_panel(
            timeseries_panel(
                "Dead letters per hour",
                "fleet_dead_letters",
                ds,
                "none",
                w=8,
                draw=common.GraphDrawStyle.BARS,
                stacked=True,
            )
        )
    )
