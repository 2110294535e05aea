"""Clinic (therapists): every patient's adherence and compliance this week and over four
weeks, lapse and asymmetry alerts, machine utilisation."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import common, dashboard

from dashboards import thresholds as t
from dashboards.builders.patient import adherence_steps
from dashboards.panels import (
    GREEN,
    ORANGE,
    RED,
    barchart_panel,
    cell_colour,
    prop,
    query_variable,
    row,
    table_panel,
    threshold_prop,
    timeseries_panel,
)

KIND = "clinic"
TITLE = "Clinic"


def build(
    uid: str, title: str, ds: str, patient_dashboard_uid: str, time_zone: str
) -> dash_b.Dashboard:
    """``time_zone``: the clinic's IANA zone; times are shown in it, not the browser's."""
    adherence_cells = [
        prop("unit", "percentunit"),
        cell_colour(),
        threshold_prop((None, RED), (t.ADHERENCE_LAPSE, ORANGE), (t.ADHERENCE_TARGET, GREEN)),
    ]
    compliance_cells = [
        prop("unit", "percentunit"),
        cell_colour(),
        threshold_prop((None, ORANGE), (t.COMPLIANCE_TARGET, GREEN)),
    ]
    patient_link = {
        "title": "Patient progress",
        "url": f"/d/{patient_dashboard_uid}?var-patient=${{__value.raw}}&${{__url_time_range}}",
    }
    return (
        dash_b.Dashboard(title)
        .uid(uid)
        .tags(["sledfleet", "therapists", "clinic"])
        .time("now-4w", "now")
        .timezone(time_zone)
        .refresh("5m")
        .readonly()
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .with_variable(
            query_variable("clinic", "Clinic", "var_clinic", ds, multi=True, include_all=True)
        )
        .with_variable(
            query_variable("patient", "Patients", "var_patient", ds, multi=True, include_all=True)
        )
        .with_row(row("Patients"))
        .with_panel(
            table_panel(
                "Patients: adherence and compliance (latest week and 4 weeks)",
                "clinic_patients_week",
                ds,
                h=10,
                overrides=[
                    ("patient_id", [prop("links", [patient_link])]),
                    ("adherence", adherence_cells),
                    ("rolling4_adherence", adherence_cells),
                    ("compliance", compliance_cells),
                    ("rolling4_compliance", compliance_cells),
                    (
                        "days_since_last_session",
                        [
                            prop("unit", "d"),
                            prop("decimals", 1),
                            cell_colour(),
                            threshold_prop(
                                (None, GREEN), (t.LAPSE_DAYS, ORANGE), (t.DROPOUT_DAYS, RED)
                            ),
                        ],
                    ),
                    (
                        "mean_asi_pct_4w",
                        [
                            prop("unit", "percent"),
                            prop("decimals", 1),
                            cell_colour(),
                            threshold_prop(
                                (None, RED),
                                (-t.ASYMMETRY_BAND_PCT, GREEN),
                                (t.ASYMMETRY_BAND_PCT, RED),
                            ),
                        ],
                    ),
                ],
                description="Sorted with the lowest rolling 4-week adherence first.",
            )
        )
        .with_panel(
            timeseries_panel(
                "Rolling 4-week adherence per patient",
                "clinic_adherence_weekly",
                ds,
                "percentunit",
                thresholds=adherence_steps(),
                threshold_style=common.GraphThresholdsStyleMode.DASHED,
                soft_min=0,
                soft_max=1,
            )
        )
        .with_panel(
            timeseries_panel(
                "Sessions per day",
                "clinic_sessions_daily",
                ds,
                "none",
                draw=common.GraphDrawStyle.BARS,
            )
        )
        .with_row(row("Alerts and machines"))
        .with_panel(
            table_panel(
                "Lapse, adherence, asymmetry and fatigue alerts",
                "clinic_alerts",
                ds,
                w=14,
                h=9,
                overrides=[
                    (
                        "severity",
                        [
                            cell_colour(),
                            prop(
                                "mappings",
                                [
                                    {
                                        "type": "value",
                                        "options": {
                                            "info": {"color": "blue", "index": 0},
                                            "warning": {"color": ORANGE, "index": 1},
                                            "critical": {"color": RED, "index": 2},
                                        },
                                    }
                                ],
                            ),
                        ],
                    )
                ],
            )
        )
        .with_panel(
            barchart_panel(
                "Machine utilisation",
                "clinic_machine_utilisation",
                ds,
                "none",
                w=10,
                h=9,
                description="Sessions, hours in use and distinct patients per machine in "
                "the time range.",
            ).override_by_name("hours_in_use", [prop("unit", "h"), prop("decimals", 1)])
        )
    )
