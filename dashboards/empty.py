"""What the report and the dashboards say instead of drawing an empty chart.

One sentence per chart: why there is no data, and how to record it. The report prints it in
the chart's place; the dashboard panels show it as their "no value" text.
"""

from __future__ import annotations

from typing import Final

EMPTY: Final = {
    "calendar": "No session in this period. Sessions are recorded when the patient checks in "
    "at a connected sled (the edge agent sends them; nothing to enter by hand).",
    "adherence": "No prescription covers this period, so attendance cannot be compared with "
    "it. Record one with `sledfleet prescribe` (sessions per week, sets × reps, load, "
    "velocity-loss limit, start date).",
    "strength": "No load–velocity data: e1RM needs a session with sets at two or more "
    "distinct loads, and MCV at the reference load needs valid reps at the prescribed load.",
    "load": "No session in this period, so there is no load to show.",
    "sides": "No left/right force: the sled's two foot-plate load cells reported no valid "
    "rep in this period (check the load cells if sessions took place).",
    "effort": "No effort, fatigue or symptom notes in this period. Record them at check-in "
    "or after a session with `sledfleet note add --patient ID --rpe 0-10 --fatigue 0-10 "
    '--symptoms "..." [--relapse-suspected]`.',
    "velocity_loss": "No set with a velocity-loss value in this period (a set needs at "
    "least two valid reps).",
    "outcomes": "No clinical outcome test recorded. Record T25FW, 5STS, 6MW or MSWS-12 "
    "results with `sledfleet outcome add --patient ID --test t25fw --value 8.2 "
    "--date YYYY-MM-DD`.",
}
"""Why a chart is missing and how to record its data, printed in its place."""
