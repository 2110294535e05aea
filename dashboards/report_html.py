"""HTML of the patient report: facts, tables and charts in the clinic's time zone.

Printable on A4 (``@page``); a chart with nothing to draw is replaced by one sentence
(:data:`dashboards.report_charts.EMPTY`) saying why and how to record its data. Booleans
never reach a table: the SQL turns them into words.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from dashboards import thresholds as t
from dashboards.report_charts import EMPTY
from dashboards.report_model import Facts, Trend

CSS: Final = """
@page{size:A4;margin:12mm}
body{font-family:"DejaVu Sans",system-ui,Helvetica,Arial,sans-serif;margin:24px;color:#222;
max-width:900px;font-size:13px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:20px 0 6px;border-bottom:1px solid #ccc}
.meta{color:#555;font-size:12px}table{border-collapse:collapse;font-size:11.5px;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.num{text-align:right}.warn{color:#b35900;font-weight:600}
.bad{color:#b00;font-weight:600}.ok{color:#1a7f1a;font-weight:600}img{width:100%;max-width:880px}
.note{font-size:11px;color:#555}.empty-chart{border:1px dashed #bbb;padding:8px;color:#444;
font-size:12px;background:#fafafa}dl.defs dt{font-weight:600;margin-top:4px}
dl.defs dd{margin:0 0 0 12px;font-size:11px;color:#444}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}img,table{break-inside:avoid}}
"""


def _e(v: Any) -> str:
    return html.escape(str(v))


def _num(v: Any, fmt: str = "{:.2f}", unit: str = "") -> str:
    if v is None:
        return "–"
    return _e(fmt.format(float(v)) + unit)


class Clock:
    """Formats times in the clinic's zone, naming it once in the header."""

    def __init__(self, tz: str) -> None:
        self.tz = tz
        self.zone = ZoneInfo(tz)

    def label(self, at: datetime) -> str:
        return f"{self.tz} (UTC{at.astimezone(self.zone).strftime('%z')})"

    def dt(self, v: datetime | None) -> str:
        return v.astimezone(self.zone).strftime("%Y-%m-%d %H:%M") if v else "–"

    def day(self, v: datetime | date | None) -> str:
        if v is None:
            return "–"
        if isinstance(v, datetime):
            v = v.astimezone(self.zone)
        return v.strftime("%Y-%m-%d")


def _img(name: str, png: bytes | None, alt: str) -> str:
    if png is None:
        return f'<p class="empty-chart" id="chart-{name}-empty">{_e(EMPTY[name])}</p>'
    data = base64.b64encode(png).decode("ascii")
    return f'<img id="chart-{name}" alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _trend_row(tr: Trend | None, fmt: str, clock: Clock, why: str) -> str:
    if tr is None:
        return f"<td colspan=3>{_e(why)}</td>"
    change = tr.change_pct
    cls = "ok" if change is not None and change > 0 else "warn"
    return (
        f"<td>week of {clock.day(tr.first_week)}: {_num(tr.first, fmt)} {_e(tr.unit)}</td>"
        f"<td>week of {clock.day(tr.last_week)}: {_num(tr.last, fmt)} {_e(tr.unit)}</td>"
        f'<td class="num {cls}">{_num(change, "{:+.1f}", " %")}</td>'
    )


Col = tuple[str, str, str]


def table(
    rows: Sequence[Mapping[str, Any]], cols: Sequence[Col], clock: Clock, ident: str, none: str
) -> str:
    if not rows:
        return f'<p class="note" id="{ident}-none">{_e(none)}</p>'
    head = "".join(f"<th>{_e(label)}</th>" for _, label, _ in cols)
    body = []
    for r in rows:
        cells = []
        for key, _, fmt in cols:
            v = r.get(key)
            if isinstance(v, datetime):
                cells.append(f"<td>{clock.dt(v)}</td>")
            elif isinstance(v, date):
                cells.append(f"<td>{clock.day(v)}</td>")
            elif isinstance(v, bool):
                raise TypeError(f"{ident}.{key}: a boolean must be put in words by its SQL")
            elif fmt and v is not None:
                cells.append(f'<td class="num">{_num(v, fmt)}</td>')
            else:
                cells.append(f"<td>{_e('–' if v is None else v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="{ident}"><tr>{head}</tr>{"".join(body)}</table>'


_KIND: Final = {
    "session": "session",
    "prescription start": "prescription start",
    "prescription end": "prescription end",
    "now": "still no session (ongoing)",
}


def _lapses(f: Facts, clock: Clock) -> str:
    if not f.lapses:
        return (
            f'<p id="lapses-none">No lapse: no gap of more than {t.LAPSE_DAYS:g} days without '
            "a session while a prescription was active.</p>"
        )
    rows = "".join(
        f'<tr class="lapse"><td>{clock.day(lp.start)} ({_e(_KIND[lp.start_kind])})</td>'
        f"<td>{clock.day(lp.end)} ({_e(_KIND[lp.end_kind])})</td>"
        f'<td class="num bad">{lp.days:.0f}</td></tr>'
        for lp in f.lapses
    )
    return (
        '<table id="lapses"><tr><th>from</th><th>to</th><th>days without a session</th></tr>'
        f"{rows}</table>"
    )


def _summary(f: Facts, clock: Clock) -> list[str]:
    adh_cls = "bad" if (f.adherence or 0) < t.ADHERENCE_LAPSE else "ok"
    cmp_cls = "warn" if (f.compliance or 0) < t.COMPLIANCE_TARGET else "ok"
    weaker = f" (weaker side: {_e(f.weaker_side_latest)})" if f.weaker_side_latest else ""
    band = t.ASYMMETRY_BAND_PCT
    return [
        '<h2>Summary</h2><table id="summary">',
        f'<tr><th>Sessions in period</th><td class="num" id="sessions">{f.sessions}</td></tr>',
        "<tr><th>Adherence (attended / prescribed, ISO weeks of the period)</th>"
        f'<td class="num {adh_cls}" id="adherence">{f.attended} / {f.prescribed} = '
        f"{_num(f.adherence, '{:.0%}')}</td></tr>",
        f'<tr><th>Compliance (as prescribed / prescribed)</th><td class="num {cmp_cls}" '
        f'id="compliance">{f.completed} / {f.prescribed} = '
        f'{_num(f.compliance, "{:.0%}")}</td></tr>',
        f"<tr><th>Rolling 4-week adherence, week {_e(f.latest_week or '–')}</th>"
        f'<td class="num" id="rolling4">{_num(f.rolling4_adherence, "{:.0%}")}</td></tr>',
        f'<tr><th>Last session</th><td id="last-session">{clock.dt(f.last_session)} '
        f"({_num(f.days_since_last_session, '{:.1f}')} days before the period end)</td></tr>",
        f'<tr><th>Latest session asymmetry</th><td id="asi">'
        f"{_num(f.asi_latest, '{:+.1f}', ' %')}{weaker}; {f.asi_sessions_outside_band} of "
        f"{f.asi_sessions} sessions outside ±{band:g} %</td></tr>",
        f'<tr><th>Sessions not as prescribed</th><td class="num" id="not-as-prescribed">'
        f"{f.sessions_not_as_prescribed} of {f.sessions} (reasons in the sessions table)</td></tr>",
        f'<tr><th>Sets above the prescribed velocity loss</th><td class="num" id="vl-sets">'
        f"{f.vl_sets_above_prescription} of {f.vl_sets}</td></tr>",
        f'<tr><th>Open alerts</th><td class="num" id="open-alerts">{f.open_alerts}</td></tr>',
        f'<tr><th>Effort / symptom notes</th><td class="num" id="notes">{f.notes}'
        f"{f' ({f.relapse_notes} with a suspected relapse)' if f.relapse_notes else ''}"
        "</td></tr></table>",
    ]


DEFINITIONS: Final = (
    (
        "Period",
        "from the later of the requested start and the patient's care start (first "
        "prescription or first session) to the requested end.",
    ),
    (
        "Adherence",
        "sessions attended / sessions prescribed, summed over the ISO weeks (clinic "
        "time zone) overlapping the period; prescribed is the prescription's sessions per week, "
        "prorated in its first and last week (MoXFo, Motl 2023).",
    ),
    (
        "Compliance",
        "sessions completed as prescribed / sessions prescribed. As prescribed: at "
        "least the prescribed number of sets reached the prescribed reps at the prescribed load "
        "and stayed within the prescribed velocity loss; warm-up sets below the load do not count.",
    ),
    (
        "Lapse",
        f"more than {t.LAPSE_DAYS:g} days without a session while a prescription is "
        "active; never before care started or outside the prescription's dates.",
    ),
    (
        "Asymmetry index",
        "(F_R − F_L) / max(F_R, F_L) × 100 on mean concentric force; "
        f"positive = right stronger; outside ±{t.ASYMMETRY_BAND_PCT:g} % is meaningful.",
    ),
    (
        "Reference load",
        "MCV is shown at the load of the current prescription, for every "
        "patient (faster at the same load = stronger).",
    ),
    ("Velocity loss", "(best − last MCV) / best MCV × 100 per set."),
)


def render_html(
    facts: Facts,
    results: Mapping[str, Sequence[Mapping[str, Any]]],
    charts: Mapping[str, bytes | None],
    problems: Sequence[str] = (),
) -> str:
    f = facts
    clock = Clock(f.time_zone)
    rx = results["patient_prescription"][0] if results["patient_prescription"] else None
    rx_html = (
        f"{_e(rx['sessions_per_week'])} sessions/week, {_e(rx['sets'])} × {_e(rx['reps'])} at "
        f"{_num(rx['load_kg'], '{:g}', ' kg')}, velocity loss ≤ "
        f"{_num(rx['max_velocity_loss_pct'], '{:g}', ' %')}, from {clock.day(rx['start_date'])}"
        f"{' to ' + clock.day(rx['end_date']) if rx['end_date'] else ''}"
        if rx
        else "no prescription on record: record one with <code>sledfleet prescribe</code>"
    )
    why_no_e1rm = EMPTY["strength"]
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f"<title>SledFleet progress report {_e(f.patient_id)}</title><style>{CSS}</style>",
        "</head><body>",
        f"<h1>Hip-sled training progress: patient {_e(f.patient_id)}</h1>",
        f'<p class="meta" id="period">Period {clock.day(f.period_start)} to '
        f"{clock.day(f.period_end)} · all times in <b>{_e(clock.label(f.period_end))}</b> · "
        f"care started {clock.day(f.care_start)} · generated {clock.dt(datetime.now(UTC))} · "
        "pseudonymous id; for clinician review, not a diagnosis.</p>",
        f"<p><b>Prescription:</b> {rx_html}</p>",
    ]
    if problems:
        parts.append(
            '<p class="bad" id="problems">Inconsistent data: '
            + "; ".join(_e(p) for p in problems)
            + "</p>"
        )
    parts += _summary(f, clock)
    parts += [
        "<h2>Attendance</h2>",
        _lapses(f, clock),
        _img("calendar", charts["calendar"], "session calendar"),
        _img("adherence", charts["adherence"], "adherence per week"),
        '<h2>Strength</h2><table id="strength"><tr><th></th><th>first week</th>'
        "<th>last week</th><th>change</th></tr>",
        f'<tr id="trend-e1rm"><th>e1RM (weekly mean)</th>'
        f"{_trend_row(f.e1rm, '{:.1f}', clock, why_no_e1rm)}</tr>",
        f'<tr id="trend-mcv"><th>MCV at reference load {_e(f.reference_load or "")}</th>'
        f"{_trend_row(f.mcv, '{:.3f}', clock, why_no_e1rm)}</tr></table>",
        '<p class="note">e1RM is the load at the minimum velocity threshold of each session\'s '
        "load–velocity profile; published profiles carry 7.5–30 % error, so read it as a trend "
        "with its band, never as a single truth.</p>",
        _img("strength", charts["strength"], "e1RM and MCV at the reference load per week"),
        _img("load", charts["load"], "load progression"),
        "<h2>Left and right legs</h2>",
        _img("sides", charts["sides"], "force per leg and asymmetry with the 10 % band"),
        "<h2>Effort, fatigue and symptoms</h2>",
        _img("effort", charts["effort"], "RPE, fatigue and symptom notes"),
        table(
            results["patient_notes"],
            [
                ("time", "noted", ""),
                ("phase", "when", ""),
                ("rpe", "RPE", "{:g}"),
                ("fatigue", "fatigue", "{:g}"),
                ("symptoms", "symptoms", ""),
                ("relapse", "relapse", ""),
            ],
            clock,
            "notes-table",
            "No notes recorded in this period.",
        ),
        _img("velocity_loss", charts["velocity_loss"], "velocity loss per set"),
        "<h2>Clinical outcome tests</h2>",
        _img("outcomes", charts["outcomes"], "clinical outcome tests"),
        table(
            results["patient_outcome_change"],
            [
                ("test", "test", ""),
                ("first_on", "first", ""),
                ("first_value", "value", "{:g}"),
                ("latest_on", "latest", ""),
                ("latest_value", "value", "{:g}"),
                ("change", "change", ""),
                ("meaningful_change", "meaningful change", ""),
                ("verdict", "reading", ""),
            ],
            clock,
            "outcomes-table",
            "No outcome test recorded.",
        ),
        "<h2>Alerts</h2>",
        table(
            results["patient_alerts"],
            [
                ("time", "raised", ""),
                ("rule", "rule", ""),
                ("severity", "severity", ""),
                ("reading", "reading", ""),
                ("state", "state", ""),
            ],
            clock,
            "alerts",
            "No alert in this period.",
        ),
        "<h2>Sessions</h2>",
        table(
            results["patient_sessions"],
            [
                ("time", "start", ""),
                ("duration_s", "duration (s)", "{:.0f}"),
                ("sets", "sets", "{:.0f}"),
                ("reps", "reps", "{:.0f}"),
                ("max_load_kg", "max load (kg)", "{:g}"),
                ("mean_mcv_ms", "MCV (m/s)", "{:.3f}"),
                ("max_velocity_loss_pct", "max VL (%)", "{:.0f}"),
                ("mean_asi_pct", "ASI (%)", "{:+.1f}"),
                ("weaker_side", "weaker", ""),
                ("e1rm_kg", "e1RM (kg)", "{:.1f}"),
                ("as_prescribed", "as prescribed", ""),
            ],
            clock,
            "sessions-table",
            "No session in this period.",
        ),
        '<h2>Definitions</h2><dl class="defs">',
        *(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in DEFINITIONS),
        "</dl>",
        '<script type="application/json" id="report-data">',
        html.escape(json.dumps(f.as_json()), quote=False),
        "</script></body></html>",
    ]
    return "\n".join(parts)
