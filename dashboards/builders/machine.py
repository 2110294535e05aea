"""Machine health: registry (agent, firmware, config versions), last seen, faults, frame
gaps, clock offset, online history and use."""

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
    steps,
    table_panel,
    threshold_prop,
    timeseries_panel,
)

KIND = "machines"
TITLE = "Machine health"


def build(
    uid: str, title: str, ds: str, *, machine_alerts: bool = True, time_zone: str = "browser"
) -> dash_b.Dashboard:
    """``machine_alerts=False`` for the operations role, which has no alerts view (no
    ``v_alerts`` in schema ``ops``: it carries patient ids). ``time_zone``: the clinic's
    IANA zone for a clinic's dashboard; the fleet-wide one (several zones) keeps the
    browser's."""
    d = (
        dash_b.Dashboard(title)
        .uid(uid)
        .tags(["sledfleet", "machines"])
        .time("now-24h", "now")
        .timezone(time_zone)
        .refresh("1m")
        .readonly()
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .with_variable(
            query_variable("clinic", "Clinic", "var_clinic", ds, multi=True, include_all=True)
        )
        .with_variable(
            query_variable("machine", "Machine", "var_machine", ds, multi=True, include_all=True)
        )
        .with_row(row("Registry"))
        .with_panel(
            table_panel(
                "Machines",
                "machine_registry",
                ds,
                h=8,
                overrides=[
                    (
                        "online",
                        [
                            cell_colour(),
                            prop(
                                "mappings",
                                [
                                    {
                                        "type": "value",
                                        "options": {
                                            "true": {"text": "online", "color": GREEN, "index": 0},
                                            "false": {"text": "offline", "color": RED, "index": 1},
                                        },
                                    }
                                ],
                            ),
                        ],
                    ),
                    ("last_seen", [prop("unit", "dateTimeAsIso")]),
                    (
                        "seconds_since_seen",
                        [
                            prop("unit", "s"),
                            cell_colour(),
                            threshold_prop(
                                (None, GREEN),
                                (t.MACHINE_STALE_S, ORANGE),
                                (t.MACHINE_OFFLINE_S, RED),
                            ),
                        ],
                    ),
                    (
                        "clock_offset_ms",
                        [
                            prop("unit", "ms"),
                            cell_colour(),
                            threshold_prop(
                                (None, RED),
                                (-t.CLOCK_OFFSET_CRITICAL_MS, ORANGE),
                                (-t.CLOCK_OFFSET_WARN_MS, GREEN),
                                (t.CLOCK_OFFSET_WARN_MS, ORANGE),
                                (t.CLOCK_OFFSET_CRITICAL_MS, RED),
                            ),
                        ],
                    ),
                    ("frames_missing", [cell_colour(), threshold_prop((None, GREEN), (1, ORANGE))]),
                ],
            )
        )
    )
    if machine_alerts:
        d = d.with_panel(table_panel("Fault events", "machine_faults", ds, w=10, h=7)).with_panel(
            table_panel("Machine alerts", "machine_alerts", ds, w=14, h=7)
        )
    else:
        d = d.with_panel(table_panel("Fault events", "machine_faults", ds, h=7))
    return (
        d.with_row(row("Over time"))
        .with_panel(
            timeseries_panel(
                "Online (fraction of status reports)",
                "machine_online",
                ds,
                "percentunit",
                soft_min=0,
                soft_max=1,
            )
        )
        .with_panel(
            timeseries_panel(
                "Clock offset",
                "machine_clock_offset",
                ds,
                "ms",
                thresholds=steps(
                    (None, RED),
                    (-t.CLOCK_OFFSET_CRITICAL_MS, ORANGE),
                    (-t.CLOCK_OFFSET_WARN_MS, GREEN),
                    (t.CLOCK_OFFSET_WARN_MS, ORANGE),
                    (t.CLOCK_OFFSET_CRITICAL_MS, RED),
                ),
                threshold_style=common.GraphThresholdsStyleMode.DASHED,
            )
        )
        .with_panel(
            timeseries_panel("Frame gaps (missing frames)", "machine_frame_gaps", ds, "none")
        )
        .with_panel(
            timeseries_panel(
                "Reps per hour",
                "machine_reps_hourly",
                ds,
                "none",
                draw=common.GraphDrawStyle.BARS,
                stacked=True,
            )
        )
    )
