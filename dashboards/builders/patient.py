"""Patient progress (therapists): one patient's calendar, adherence, strength, asymmetry,
fatigue and clinical outcomes on one time axis."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import common, dashboard

from dashboards import thresholds as t
from dashboards.panels import (
    GREEN,
    ORANGE,
    RED,
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

KIND = "patient"
TITLE = "Patient progress"


def adherence_steps() -> dash_b.ThresholdsConfig:
    return steps((None, RED), (t.ADHERENCE_LAPSE, ORANGE), (t.ADHERENCE_TARGET, GREEN))


def compliance_steps() -> dash_b.ThresholdsConfig:
    return steps((None, ORANGE), (t.COMPLIANCE_TARGET, GREEN))


def days_steps() -> dash_b.ThresholdsConfig:
    return steps((None, GREEN), (t.LAPSE_DAYS, ORANGE), (t.DROPOUT_DAYS, RED))


def build(uid: str, title: str, ds: str) -> dash_b.Dashboard:
    d = (
        dash_b.Dashboard(title)
        .uid(uid)
        .tags(["sledfleet", "therapists", "patient"])
        .time("now-12w", "now")
        .timezone("browser")
        .refresh("5m")
        .readonly()
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .with_variable(
            query_variable("clinic", "Clinic", "var_clinic", ds, multi=True, include_all=True)
        )
        .with_variable(
            query_variable("patient", "Patient", "var_patient", ds, multi=False, include_all=False)
        )
    )
    summary = "patient_summary"
    d = (
        d.with_row(row("This week"))
        .with_panel(
            stat_panel(
                "Adherence (latest week)",
                summary,
                ds,
                "percentunit",
                fields="/^adherence$/",
                thresholds=adherence_steps(),
            )
        )
        .with_panel(
            stat_panel(
                "Compliance (latest week)",
                summary,
                ds,
                "percentunit",
                fields="/^compliance$/",
                thresholds=compliance_steps(),
            )
        )
        .with_panel(
            stat_panel(
                "Adherence, 4 weeks",
                summary,
                ds,
                "percentunit",
                fields="/^rolling4_adherence$/",
                thresholds=adherence_steps(),
            )
        )
        .with_panel(
            stat_panel(
                "Compliance, 4 weeks",
                summary,
                ds,
                "percentunit",
                fields="/^rolling4_compliance$/",
                thresholds=compliance_steps(),
            )
        )
        .with_panel(
            stat_panel(
                "Days since last session",
                summary,
                ds,
                "d",
                fields="/^days_since_last_session$/",
                thresholds=days_steps(),
                decimals=1,
                description="Orange: lapse (7 days), red: dropout risk (28).",
            )
        )
        .with_panel(stat_panel("Sessions in range", summary, ds, "none", fields="/^sessions$/"))
        .with_panel(table_panel("Current prescription", "patient_prescription", ds, h=4))
    )
    d = (
        d.with_row(row("Training"))
        .with_panel(
            timeseries_panel(
                "Session calendar",
                "patient_calendar",
                ds,
                "none",
                draw=common.GraphDrawStyle.BARS,
                description="Sessions and valid reps per day; a gap is a lapse.",
            )
        )
        .with_panel(
            timeseries_panel(
                "Adherence against the prescription",
                "patient_adherence_weekly",
                ds,
                "none",
                draw=common.GraphDrawStyle.BARS,
                description="Sessions prescribed, attended and completed as prescribed per "
                "ISO week; lines: weekly and rolling 4-week adherence.",
            )
            .override_by_name(
                "prescribed",
                [
                    prop("custom.drawStyle", "line"),
                    prop("custom.lineStyle", {"fill": "dash", "dash": [10, 10]}),
                ],
            )
            .override_by_regexp(
                "adherence",
                [
                    prop("unit", "percentunit"),
                    prop("custom.drawStyle", "line"),
                    prop("custom.axisPlacement", "right"),
                    prop("min", 0),
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "MCV at reference loads (weekly)",
                "patient_mcv_reference_load",
                ds,
                "velocityms",
                draw=common.GraphDrawStyle.LINE,
                description="Mean concentric velocity of the sets at each load; faster at the "
                "same load means stronger.",
            )
        )
        .with_panel(
            timeseries_panel(
                "Mean power at reference loads (weekly)", "patient_power_reference_load", ds, "watt"
            )
        )
        .with_panel(
            timeseries_panel(
                "e1RM trend with uncertainty",
                "patient_e1rm_weekly",
                ds,
                "masskg",
                description="Weekly mean of the load-velocity e1RM estimates; the band is one "
                "standard deviation, at least "
                f"{t.E1RM_MIN_REL_UNCERTAINTY:.1%} (published error 7.5-30 %). A trend, "
                "not a single truth.",
            )
            .override_by_name(
                "e1rm_high_kg",
                [
                    prop("custom.fillBelowTo", "e1rm_low_kg"),
                    prop("custom.lineWidth", 0),
                    prop("custom.fillOpacity", 20),
                ],
            )
            .override_by_name("e1rm_low_kg", [prop("custom.lineWidth", 0)])
            .override_by_name(
                "estimates",
                [prop("custom.hideFrom", {"viz": True, "legend": True, "tooltip": False})],
            )
        )
        .with_panel(
            timeseries_panel(
                "Left/right asymmetry",
                "patient_asymmetry",
                ds,
                "percent",
                draw=common.GraphDrawStyle.POINTS,
                thresholds=steps(
                    (None, RED), (-t.ASYMMETRY_BAND_PCT, GREEN), (t.ASYMMETRY_BAND_PCT, RED)
                ),
                threshold_style=common.GraphThresholdsStyleMode.LINE_AND_AREA,
                soft_min=-2 * t.ASYMMETRY_BAND_PCT,
                soft_max=2 * t.ASYMMETRY_BAND_PCT,
                description="Session mean ASI = (F_R - F_L) / max(F_R, F_L); positive: right "
                f"side stronger. Green band: within ±{t.ASYMMETRY_BAND_PCT:g} %.",
            )
        )
        .with_panel(
            timeseries_panel(
                "Velocity loss per set",
                "patient_velocity_loss",
                ds,
                "percent",
                draw=common.GraphDrawStyle.POINTS,
                thresholds=steps(
                    (None, GREEN),
                    (t.VELOCITY_LOSS_PRESCRIBED_PCT, ORANGE),
                    (t.VELOCITY_LOSS_FATIGUE_PCT, RED),
                ),
                threshold_style=common.GraphThresholdsStyleMode.DASHED,
                soft_min=0,
                soft_max=50,
                description="(best - last MCV) / best per set; dashed: the prescription's limit.",
            ).override_by_name(
                "prescribed_max_pct",
                [
                    prop("custom.drawStyle", "line"),
                    prop("custom.lineStyle", {"fill": "dash", "dash": [10, 10]}),
                    prop("color", {"mode": "fixed", "fixedColor": ORANGE}),
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Clinical outcomes",
                "patient_outcomes",
                ds,
                "s",
                draw=common.GraphDrawStyle.POINTS,
                description="Timed 25-Foot Walk and Five Times Sit-to-Stand (s), 6-Minute "
                "Walk (m, right axis), MSWS-12 (points).",
            )
            .override_by_name(
                "6MW (m)", [prop("unit", "lengthm"), prop("custom.axisPlacement", "right")]
            )
            .override_by_name(
                "MSWS-12", [prop("unit", "none"), prop("custom.axisPlacement", "right")]
            )
        )
        .with_panel(
            table_panel(
                "Sessions",
                "patient_sessions",
                ds,
                overrides=[
                    ("duration_s", [prop("unit", "s")]),
                    ("max_load_kg", [prop("unit", "masskg")]),
                    ("volume_load_kg", [prop("unit", "masskg")]),
                    ("e1rm_kg", [prop("unit", "masskg"), prop("decimals", 0)]),
                    ("mean_mcv_ms", [prop("unit", "velocityms"), prop("decimals", 2)]),
                    (
                        "max_velocity_loss_pct",
                        [
                            prop("unit", "percent"),
                            cell_colour(),
                            threshold_prop(
                                (None, GREEN),
                                (t.VELOCITY_LOSS_PRESCRIBED_PCT, ORANGE),
                                (t.VELOCITY_LOSS_FATIGUE_PCT, RED),
                            ),
                        ],
                    ),
                    (
                        "mean_asi_pct",
                        [
                            prop("unit", "percent"),
                            cell_colour(),
                            threshold_prop(
                                (None, RED),
                                (-t.ASYMMETRY_BAND_PCT, GREEN),
                                (t.ASYMMETRY_BAND_PCT, RED),
                            ),
                        ],
                    ),
                ],
            )
        )
        .with_panel(table_panel("Alerts", "patient_alerts", ds, h=6))
    )
    return d
