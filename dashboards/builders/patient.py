"""Patient progress (therapists): the patient at a glance, then calendar, adherence, strength,
left/right force, effort notes, fatigue and clinical outcomes on one time axis.

Every panel runs the same ``dashboards/sql`` query the printable report runs, so the two
cannot disagree; a panel without data shows the report's sentence saying how to record it.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import common, dashboard

from dashboards import thresholds as t
from dashboards.empty import EMPTY
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


def build(uid: str, title: str, ds: str, time_zone: str) -> dash_b.Dashboard:
    """``time_zone``: the clinic's IANA zone; times are shown in it, not the browser's."""
    d = (
        dash_b.Dashboard(title)
        .uid(uid)
        .tags(["sledfleet", "therapists", "patient"])
        .time("now-12w", "now")
        .timezone(time_zone)
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
        d.with_row(row("Patient at a glance"))
        .with_panel(
            stat_panel(
                "Adherence this week",
                summary,
                ds,
                "percentunit",
                fields="/^week_adherence$/",
                thresholds=adherence_steps(),
                description="Sessions attended / prescribed in the latest ISO week (clinic "
                "time zone).",
            )
        )
        .with_panel(
            stat_panel(
                "Last session (days ago)",
                summary,
                ds,
                "d",
                fields="/^days_since_last_session$/",
                thresholds=days_steps(),
                decimals=1,
                description="Days from the last session to the end of the range. Orange: "
                f"lapse ({t.LAPSE_DAYS:g} days), red: dropout risk ({t.DROPOUT_DAYS:g}).",
            )
        )
        .with_panel(
            stat_panel(
                "Asymmetry, latest session",
                summary,
                ds,
                "percent",
                fields="/^asi_pct$/",
                thresholds=steps(
                    (None, RED), (-t.ASYMMETRY_BAND_PCT, GREEN), (t.ASYMMETRY_BAND_PCT, RED)
                ),
                decimals=1,
                description="ASI = (F_R - F_L) / max(F_R, F_L) × 100; positive: right "
                "stronger.",
            )
        )
        .with_panel(
            stat_panel("Weaker side", summary, ds, "none", fields="/^weaker_side$/", w=3)
        )
        .with_panel(
            stat_panel(
                "Open alerts",
                summary,
                ds,
                "none",
                fields="/^open_alerts$/",
                thresholds=steps((None, GREEN), (1, ORANGE)),
                w=3,
            )
        )
        .with_panel(
            stat_panel(
                "Adherence, period",
                summary,
                ds,
                "percentunit",
                fields="/^adherence$/",
                thresholds=adherence_steps(),
                w=3,
                description="Attended / prescribed over the ISO weeks of the range, from the "
                "patient's care start (first prescription or session).",
            )
        )
        .with_panel(
            stat_panel(
                "Compliance, period",
                summary,
                ds,
                "percentunit",
                fields="/^compliance$/",
                thresholds=compliance_steps(),
                w=3,
                description="Sessions as prescribed (sets × reps at the load, velocity loss "
                "within the limit) / prescribed.",
            )
        )
        .with_panel(table_panel("Current prescription", "patient_prescription", ds, h=4, w=12))
        .with_panel(
            table_panel(
                "Lapses (no session for over 7 days while a prescription is active)",
                "patient_lapses",
                ds,
                h=4,
                w=12,
                overrides=[("days", [prop("decimals", 0)])],
                empty="No lapse in this range.",
            )
        )
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
                description="Sessions per day of the clinic's calendar, and how many were "
                "as prescribed.",
                empty=EMPTY["calendar"],
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
                empty=EMPTY["adherence"],
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
                "MCV at the prescribed load (weekly)",
                "patient_mcv_reference_load",
                ds,
                "velocityms",
                draw=common.GraphDrawStyle.LINE,
                description="Mean concentric velocity of the valid reps at the current "
                "prescription's load (the same reference for every patient); faster at the "
                "same load means stronger.",
                empty=EMPTY["strength"],
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
                empty=EMPTY["strength"],
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
                "Load progression",
                "patient_load_progression",
                ds,
                "masskg",
                description="Heaviest load per session and the prescribed load (dashed).",
                empty=EMPTY["load"],
            )
            .override_by_name(
                "prescribed_load_kg",
                [prop("custom.lineStyle", {"fill": "dash", "dash": [10, 10]})],
            )
            .override_by_name(
                "volume_load_kg",
                [prop("custom.axisPlacement", "right"), prop("custom.drawStyle", "bars")],
            )
        )
        .with_panel(
            timeseries_panel(
                "Mean power per load (weekly)", "patient_power_reference_load", ds, "watt"
            )
        )
        .with_panel(
            timeseries_panel(
                "Left/right force and asymmetry",
                "patient_sides",
                ds,
                "newton",
                draw=common.GraphDrawStyle.POINTS,
                description="Mean concentric force of each leg per session; ASI (right "
                "axis) = (F_R - F_L) / max(F_R, F_L), positive: right side stronger. "
                f"Green band: within ±{t.ASYMMETRY_BAND_PCT:g} %.",
                empty=EMPTY["sides"],
            ).override_by_name(
                "asi_pct",
                [
                    prop("unit", "percent"),
                    prop("custom.axisPlacement", "right"),
                    prop("custom.axisSoftMin", -2 * t.ASYMMETRY_BAND_PCT),
                    prop("custom.axisSoftMax", 2 * t.ASYMMETRY_BAND_PCT),
                    prop("custom.thresholdsStyle", {"mode": "line+area"}),
                    threshold_prop(
                        (None, RED), (-t.ASYMMETRY_BAND_PCT, GREEN), (t.ASYMMETRY_BAND_PCT, RED)
                    ),
                ],
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
                empty=EMPTY["velocity_loss"],
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
            table_panel(
                "Effort, fatigue and symptom notes",
                "patient_notes",
                ds,
                w=12,
                h=8,
                description="RPE (Borg CR10), fatigue (0-10), symptoms and suspected "
                "relapse, recorded with `sledfleet note add`.",
                empty=EMPTY["effort"],
            )
        )
    )
    d = (
        d.with_row(row("Clinical outcomes"))
        .with_panel(
            timeseries_panel(
                "Clinical outcomes",
                "patient_outcomes",
                ds,
                "s",
                draw=common.GraphDrawStyle.POINTS,
                description="Timed 25-Foot Walk and Five Times Sit-to-Stand (s), 6-Minute "
                "Walk (m, right axis), MSWS-12 (points).",
                empty=EMPTY["outcomes"],
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
                "Outcome change against the meaningful-change threshold",
                "patient_outcome_change",
                ds,
                w=12,
                description=f"T25FW ≥ {t.OUTCOME_T25FW_CHANGE_PCT:g} %, 5STS ≥ "
                f"{t.OUTCOME_5STS_CHANGE_S:g} s, 6MW ≥ {t.OUTCOME_6MW_CHANGE_PCT:g} % (ours), "
                f"MSWS-12 ≥ {t.OUTCOME_MSWS12_CHANGE_POINTS:g} points.",
                empty=EMPTY["outcomes"],
            )
        )
    )
    d = (
        d.with_row(row("Sessions and alerts"))
        .with_panel(
            table_panel(
                "Sessions",
                "patient_sessions",
                ds,
                description="'as prescribed': yes, or no with the reason.",
                empty=EMPTY["calendar"],
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
        .with_panel(
            table_panel("Alerts", "patient_alerts", ds, h=6, empty="No alert in this range.")
        )
    )
    return d
